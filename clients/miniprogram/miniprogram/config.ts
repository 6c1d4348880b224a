/**
 * Where this shop's Minipay is: the API gateway's https origin, no path. In production its
 * host must be one of the Mini Program's "request legal domains" (request 合法域名, set in the
 * Mini Program's admin console), served with a certificate WeChat trusts.
 *
 * The default is the gateway `minipay up --gateway` starts on this machine; in WeChat
 * DevTools tick "Do not verify valid domain names, TLS versions and HTTPS certificates" (不校验
 * 合法域名、TLS 版本以及 HTTPS 证书) to use it, since its certificate is a test one.
 */
export const MINIPAY_BASE_URL = 'https://127.0.0.1:8443'
