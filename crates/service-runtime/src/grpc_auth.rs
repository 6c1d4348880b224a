//! Internal gRPC calls carry a per-service bearer token: each gRPC server has its own
//! ([`GrpcSettings`], `GRPC_TOKEN` or the file named by `GRPC_TOKEN_FILE`), its callers hold
//! it too ([`ClientAuth`]), and [`TokenCheck`] refuses a call without it as `Unauthenticated`
//! (the digests compared in constant time). Without a token a service refuses to start,
//! unless `WECHAT_MODE=simulator` asks for a local stack, which then runs unauthenticated.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

use crate::settings::{SettingsError, Source, WeChatMode};
use crate::telemetry::inject_trace_id;

/// The metadata key of the token.
const AUTHORIZATION: &str = "authorization";

/// Shortest token accepted.
const MIN_TOKEN_LEN: usize = 32;

/// A gRPC token: printable ASCII without spaces, at least 32 bytes; `Debug` shows nothing.
#[derive(Clone)]
pub struct GrpcToken(SecretString);

impl std::fmt::Debug for GrpcToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcToken(***)")
    }
}

impl GrpcToken {
    /// `token`, if it is usable; the reason if not (never the token).
    pub fn new(token: &str) -> Result<Self, &'static str> {
        if token.len() < MIN_TOKEN_LEN {
            return Err("must be at least 32 bytes");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces");
        }
        Ok(GrpcToken(SecretString::from(token.to_owned())))
    }

    /// The token in `var`, or in the file named by `{var}_FILE` (surrounding whitespace
    /// trimmed); `None` if neither is set. An unusable value or file is named.
    pub fn from_source(env: &impl Source, var: &str) -> Result<Option<Self>, SettingsError> {
        let file_var = format!("{var}_FILE");
        let (name, raw) = match (env.get(var), env.get(&file_var)) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::Invalid {
                    name: var.to_owned(),
                    reason: format!("set {var} or {file_var}, not both"),
                });
            }
            (Some(raw), None) => (var.to_owned(), raw),
            (None, Some(path)) => {
                let raw =
                    std::fs::read_to_string(path.trim()).map_err(|e| SettingsError::Invalid {
                        name: file_var.clone(),
                        reason: format!("cannot read the token file: {}", e.kind()),
                    })?;
                (file_var, raw)
            }
            (None, None) => return Ok(None),
        };
        GrpcToken::new(raw.trim())
            .map(Some)
            .map_err(|reason| SettingsError::Invalid {
                name,
                reason: reason.into(),
            })
    }

    /// The token in `var` (or `{var}_FILE`): required, unless `WECHAT_MODE=simulator`.
    pub fn required_unless_simulator(
        env: &impl Source,
        var: &str,
    ) -> Result<Option<Self>, SettingsError> {
        match GrpcToken::from_source(env, var)? {
            Some(token) => Ok(Some(token)),
            None if simulator_mode(env)? => Ok(None),
            None => Err(SettingsError::Invalid {
                name: var.to_owned(),
                reason: format!(
                    "is required (or {var}_FILE); only WECHAT_MODE=simulator runs without one"
                ),
            }),
        }
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose_secret().as_bytes()).into()
    }

    fn bearer(&self) -> Option<MetadataValue<Ascii>> {
        format!("Bearer {}", self.0.expose_secret()).parse().ok()
    }
}

/// Whether a local stack against the simulator was asked for (`WECHAT_MODE=simulator`).
fn simulator_mode(env: &impl Source) -> Result<bool, SettingsError> {
    Ok(WeChatMode::from_source(env)? == WeChatMode::Simulator)
}

/// A gRPC server's settings: its token and whether reflection is served.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// The token callers must send (`GRPC_TOKEN` or `GRPC_TOKEN_FILE`; required unless
    /// `WECHAT_MODE=simulator`, where none means no check).
    pub token: Option<GrpcToken>,
    /// Serve gRPC reflection (`GRPC_REFLECTION`, `on` or `off`, default `off`).
    pub reflection: bool,
}

impl GrpcSettings {
    /// Reads `GRPC_TOKEN` / `GRPC_TOKEN_FILE` and `GRPC_REFLECTION`.
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        let reflection = env.on_off_or("GRPC_REFLECTION", false)?;
        Ok(GrpcSettings {
            token: GrpcToken::required_unless_simulator(env, "GRPC_TOKEN")?,
            reflection,
        })
    }
}

/// Server interceptor: the call must carry `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct TokenCheck {
    /// The SHA-256 of the expected token (`None`: no check).
    expected: Option<[u8; 32]>,
    service: &'static str,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("enabled", &self.expected.is_some())
            .finish()
    }
}

impl TokenCheck {
    /// Checks for `token` (no check with `None`).
    pub fn new(service: &'static str, token: Option<&GrpcToken>) -> Self {
        TokenCheck {
            expected: token.map(GrpcToken::digest),
            service,
        }
    }
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|token| Sha256::digest(token.as_bytes()));
        if presented.is_some_and(|p| bool::from(p.as_slice().ct_eq(expected))) {
            return Ok(request);
        }
        metrics::counter!("grpc_unauthenticated_total", "service" => self.service).increment(1);
        tracing::warn!(
            service = self.service,
            token_sent = presented.is_some(),
            "gRPC call refused: missing or wrong token"
        );
        Err(Status::unauthenticated("missing or invalid token"))
    }
}

/// Client interceptor: the current trace id, and the callee's token when there is one.
#[derive(Clone)]
pub struct ClientAuth {
    bearer: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("token", &self.bearer.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ClientAuth {
    /// Sends `token` (nothing with `None`).
    pub fn new(token: Option<&GrpcToken>) -> Self {
        ClientAuth {
            bearer: token.and_then(GrpcToken::bearer),
        }
    }
}

impl tonic::service::Interceptor for ClientAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = inject_trace_id(request)?;
        if let Some(bearer) = &self.bearer {
            request.metadata_mut().insert(AUTHORIZATION, bearer.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;
    use crate::settings::MapEnv;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef-token";

    #[test]
    fn a_token_is_required_unless_simulator_mode() {
        let err = GrpcSettings::from_source(&MapEnv::default()).unwrap_err();
        assert!(err.to_string().contains("GRPC_TOKEN"), "{err}");
        let dev =
            GrpcSettings::from_source(&MapEnv::from_pairs([("WECHAT_MODE", "simulator")])).unwrap();
        assert!(dev.token.is_none() && !dev.reflection);
        let short =
            GrpcSettings::from_source(&MapEnv::from_pairs([("GRPC_TOKEN", "short")])).unwrap_err();
        assert!(short.to_string().contains("GRPC_TOKEN") && !short.to_string().contains("short\""));
        let ok = GrpcSettings::from_source(&MapEnv::from_pairs([
            ("GRPC_TOKEN", TOKEN),
            ("GRPC_REFLECTION", "on"),
        ]))
        .unwrap();
        assert!(ok.reflection);
        assert!(!format!("{ok:?}").contains(TOKEN));
    }

    #[test]
    fn a_token_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("grpc-token-{}", std::process::id()));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let env = MapEnv::from_pairs([("GRPC_TOKEN_FILE", path.to_str().unwrap())]);
        let token = GrpcToken::from_source(&env, "GRPC_TOKEN").unwrap().unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut check = TokenCheck::new("test", Some(&token));
        let mut client = ClientAuth::new(Some(&GrpcToken::new(TOKEN).unwrap()));
        assert!(check.call(client.call(Request::new(())).unwrap()).is_ok());
        let missing = MapEnv::from_pairs([("GRPC_TOKEN_FILE", "/nonexistent/token")]);
        let err = GrpcToken::from_source(&missing, "GRPC_TOKEN").unwrap_err();
        assert!(err.to_string().contains("GRPC_TOKEN_FILE"), "{err}");
    }

    #[test]
    fn calls_without_the_right_token_are_unauthenticated() {
        let token = GrpcToken::new(TOKEN).unwrap();
        let mut check = TokenCheck::new("test", Some(&token));
        let other = GrpcToken::new(&"x".repeat(40)).unwrap();
        for mut client in [ClientAuth::new(None), ClientAuth::new(Some(&other))] {
            let refused = check
                .call(client.call(Request::new(())).unwrap())
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::Unauthenticated);
            assert!(!refused.message().contains(TOKEN));
        }
    }
}
