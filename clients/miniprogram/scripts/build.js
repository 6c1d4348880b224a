#!/usr/bin/env node
// Compiles miniprogram/ and test/ to build/ for Node (without type-checking: `npm run
// typecheck` does that) and copies each page's and component's .wxml, .wxss and .json
// beside its .js, the layout miniprogram-simulate loads. WeChat DevTools compiles
// miniprogram/ itself (project.config.json: useCompilerPlugins typescript).
'use strict'
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.resolve(__dirname, '..')
const build = path.join(root, 'build')
let tsc
try {
  tsc = require.resolve('typescript/bin/tsc', { paths: [root] })
} catch {
  console.error('build: typescript is not installed; run `bash scripts/install-miniprogram-deps.sh` at the repository root')
  process.exit(1)
}

for (const dir of ['miniprogram', 'test']) fs.rmSync(path.join(build, dir), { recursive: true, force: true })
for (const project of ['test/tsconfig.json', 'test/e2e/tsconfig.json']) {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, project), '--noEmit', 'false', '--noCheck'], {
    stdio: 'inherit',
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

function copyAssets(from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name)
    const dst = path.join(to, entry.name)
    if (entry.isDirectory()) copyAssets(src, dst)
    else if (/\.(wxml|wxss|json|wxs)$/.test(entry.name)) {
      fs.mkdirSync(to, { recursive: true })
      fs.copyFileSync(src, dst)
    }
  }
}
copyAssets(path.join(root, 'miniprogram'), path.join(build, 'miniprogram'))
