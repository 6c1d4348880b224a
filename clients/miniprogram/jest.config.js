// The tests run compiled: `scripts/build.js` emits miniprogram/ and test/ to build/, with
// each page's and component's .wxml/.wxss/.json beside its .js, which is what
// miniprogram-simulate loads.
module.exports = {
  testEnvironment: 'jsdom',
  rootDir: __dirname,
  roots: ['<rootDir>/build/test'],
  testMatch: ['**/*.test.js'],
  testPathIgnorePatterns: ['/node_modules/', '/e2e/'],
  // The simulator's official WXML compiler (miniprogram-compiler's wcc) runs per test file.
  testTimeout: 15000,
  cacheDirectory: '<rootDir>/build/.jest-cache',
}
