//! The simulator's settings: its merchants, its clock, and its start-up faults.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use wechat_pay::v2::ApiKey;

use crate::faults::Faults;

/// The reference's example merchant: the simulator's default.
pub const DEFAULT_APPID: &str = wechat_pay::example::APPID;
/// Default merchant number.
pub const DEFAULT_MCH_ID: &str = wechat_pay::example::MCH_ID;
/// Default v2 API key.
pub const DEFAULT_API_KEY: &str = wechat_pay::example::API_KEY;
/// Default Mini Program AppSecret.
pub const DEFAULT_APP_SECRET: &str = wechat_pay::example::APP_SECRET;
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

/// One merchant the simulator knows: a Mini Program (appid, AppSecret) paired with a
/// merchant number and its API key. `Debug` hides the secrets.
#[derive(Clone)]
pub struct SimMerchant {
    /// Mini Program AppID.
    pub appid: String,
    /// Merchant number.
    pub mch_id: String,
    /// v2 API key.
    pub key: ApiKey,
    /// Mini Program AppSecret (for `jscode2session`).
    pub app_secret: String,
}

impl std::fmt::Debug for SimMerchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMerchant")
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("key", &self.key)
            .field("app_secret", &"[REDACTED]")
            .finish()
    }
}

impl SimMerchant {
    /// The reference's example merchant.
    pub fn default_merchant() -> Self {
        SimMerchant {
            appid: DEFAULT_APPID.into(),
            mch_id: DEFAULT_MCH_ID.into(),
            key: ApiKey::new(DEFAULT_API_KEY)
                .unwrap_or_else(|_| unreachable!("the default key is 32 characters")),
            app_secret: DEFAULT_APP_SECRET.into(),
        }
    }

    /// The key for sandbox calls (`/sandboxnew/...`): derived from the API key, stable.
    pub fn sandbox_key(&self) -> ApiKey {
        use md5::{Digest, Md5};
        let derived = hex::encode(Md5::digest(
            format!("sandbox:{}", self.key.expose()).as_bytes(),
        ));
        ApiKey::new(derived).unwrap_or_else(|_| self.key.clone())
    }
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (port 0 for tests).
    pub listen: SocketAddr,
    /// Known merchants; the first is the default.
    pub merchants: Vec<SimMerchant>,
    /// Multiplies WeChat's notification retry schedule and the login code lifetime
    /// (1.0 = real time; tests use e.g. 0.001).
    pub time_scale: f64,
    /// Pay every prepaid order this long after its prepay.
    pub auto_pay_after: Option<Duration>,
    /// How long a prepay_id stays valid (WeChat: 2 hours).
    pub prepay_ttl: Duration,
    /// How long to wait for a notification receiver's answer (WeChat: about 5 s).
    pub notify_timeout: Duration,
    /// Faults in force from the start.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            merchants: vec![SimMerchant::default_merchant()],
            time_scale: 1.0,
            auto_pay_after: None,
            prepay_ttl: Duration::from_secs(2 * 3600),
            notify_timeout: Duration::from_secs(5),
            faults: Faults::default(),
        }
    }
}

/// Why the command line or config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An unknown flag.
    #[error("unknown flag {0} (see --help)")]
    UnknownFlag(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A flag or variable with a bad value.
    #[error("invalid value for {name}: {reason}")]
    Invalid {
        /// The flag or variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    File {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

fn invalid(name: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

pub use service_runtime::settings::parse_duration;

/// A merchant as written in a config file or `--merchant appid:mch_id:key:secret`.
#[derive(Deserialize)]
struct MerchantSpec {
    appid: String,
    mch_id: String,
    api_key: String,
    app_secret: String,
}

impl MerchantSpec {
    fn into_merchant(self, name: &str) -> Result<SimMerchant, ConfigError> {
        let valid_appid = self.appid.len() <= 32
            && !self.appid.is_empty()
            && self.appid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid_appid {
            return Err(invalid(name, "appid must be 1-32 ASCII letters and digits"));
        }
        if self.mch_id.is_empty()
            || self.mch_id.len() > 32
            || !self.mch_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(name, "mch_id must be 1-32 digits"));
        }
        Ok(SimMerchant {
            appid: self.appid,
            mch_id: self.mch_id,
            key: ApiKey::new(self.api_key).map_err(|e| invalid(name, e))?,
            app_secret: self.app_secret,
        })
    }
}

#[derive(Deserialize)]
struct FileConfig {
    merchants: Vec<MerchantSpec>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run with this configuration.
    Run(SimConfig),
    /// Print usage.
    Help,
}

/// Usage text.
pub const USAGE: &str = "\
wechatpay-sim: a WeChat Pay v2 merchant API and Mini Program login simulator

USAGE: wechatpay-sim [FLAGS]

  --listen ADDR                 where to listen (env SIM_LISTEN; default 127.0.0.1:8090)
  --merchant APPID:MCH_ID:KEY:SECRET
                                add a merchant (repeatable; replaces the default merchant)
  --config FILE                 JSON file {\"merchants\": [{\"appid\", \"mch_id\", \"api_key\", \"app_secret\"}]}
  --time-scale F                multiply the notification retry schedule and code lifetimes (default 1.0)
  --auto-pay-after DURATION     pay every prepaid order DURATION after its prepay (e.g. 2s, 500ms)
  --prepay-ttl DURATION         prepay_id validity (default 2h)
  --notify-timeout DURATION     wait this long for a notification ack (default 5s)
  --latency DURATION            fault: delay every merchant API answer
  --system-error-rate F         fault: answer SYSTEMERROR on this fraction (0..1) of merchant API calls
  --drop-notifications          fault: never send notifications
  --duplicate-notifications N   fault: send N concurrent copies of every notification
  --reorder-notifications N     fault: hold notifications until N are pending, then send newest first
  --wrong-amount                fault: notifications carry total_fee + 1 (validly signed)
  --forge-signature             fault: notifications carry a wrong signature
  -h, --help                    this text
";

/// Parses the command line (without the program name); `listen_env` is `SIM_LISTEN`.
pub fn parse_args(args: &[String], listen_env: Option<&str>) -> Result<Command, ConfigError> {
    let mut config = SimConfig::default();
    let mut merchants = Vec::new();
    if let Some(listen) = listen_env {
        config.listen = listen.parse().map_err(|e| invalid("SIM_LISTEN", e))?;
    }
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| ConfigError::MissingValue(name.to_owned()))
        };
        let duration = |name: &str, v: String| {
            parse_duration(&v).ok_or_else(|| invalid(name, "expected e.g. 500ms, 5s, 2m"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => config.listen = value(flag)?.parse().map_err(|e| invalid(flag, e))?,
            "--merchant" => {
                let v = value(flag)?;
                let parts: Vec<&str> = v.splitn(4, ':').collect();
                let [appid, mch_id, api_key, app_secret] = parts[..] else {
                    return Err(invalid(flag, "expected APPID:MCH_ID:KEY:SECRET"));
                };
                let spec = MerchantSpec {
                    appid: appid.into(),
                    mch_id: mch_id.into(),
                    api_key: api_key.into(),
                    app_secret: app_secret.into(),
                };
                merchants.push(spec.into_merchant(flag)?);
            }
            "--config" => {
                let path = value(flag)?;
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let file: FileConfig =
                    serde_json::from_str(&text).map_err(|e| ConfigError::File {
                        path,
                        reason: e.to_string(),
                    })?;
                for spec in file.merchants {
                    merchants.push(spec.into_merchant("--config")?);
                }
            }
            "--time-scale" => {
                let f: f64 = value(flag)?.parse().map_err(|e| invalid(flag, e))?;
                if !(f.is_finite() && f > 0.0) {
                    return Err(invalid(flag, "must be a positive number"));
                }
                config.time_scale = f;
            }
            "--auto-pay-after" => config.auto_pay_after = Some(duration(flag, value(flag)?)?),
            "--prepay-ttl" => config.prepay_ttl = duration(flag, value(flag)?)?,
            "--notify-timeout" => config.notify_timeout = duration(flag, value(flag)?)?,
            "--latency" => {
                config.faults.latency_ms =
                    u64::try_from(duration(flag, value(flag)?)?.as_millis()).unwrap_or(u64::MAX)
            }
            "--system-error-rate" => {
                let f: f64 = value(flag)?.parse().map_err(|e| invalid(flag, e))?;
                if !(0.0..=1.0).contains(&f) {
                    return Err(invalid(flag, "must be between 0 and 1"));
                }
                config.faults.system_error_rate = f;
            }
            "--drop-notifications" => config.faults.drop_notifications = true,
            "--duplicate-notifications" => {
                config.faults.duplicate_notifications =
                    value(flag)?.parse().map_err(|e| invalid(flag, e))?
            }
            "--reorder-notifications" => {
                config.faults.reorder_notifications =
                    value(flag)?.parse().map_err(|e| invalid(flag, e))?
            }
            "--wrong-amount" => config.faults.wrong_amount = true,
            "--forge-signature" => config.faults.forge_signature = true,
            other => return Err(ConfigError::UnknownFlag(other.to_owned())),
        }
    }
    if !merchants.is_empty() {
        config.merchants = merchants;
    }
    config.faults.validate().map_err(|e| invalid("faults", e))?;
    Ok(Command::Run(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5d"), None);
    }

    #[test]
    fn flags() {
        let Ok(Command::Run(c)) = parse_args(
            &args(&[
                "--listen",
                "127.0.0.1:0",
                "--time-scale",
                "0.001",
                "--auto-pay-after",
                "2s",
                "--merchant",
                "wx1234:1900000109:0123456789abcdef0123456789abcdef:s3cret",
            ]),
            Some("127.0.0.1:9999"),
        ) else {
            panic!("expected a run command")
        };
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.time_scale, 0.001);
        assert_eq!(c.auto_pay_after, Some(Duration::from_secs(2)));
        assert_eq!(c.merchants.len(), 1);
        assert_eq!(c.merchants[0].mch_id, "1900000109");
        assert!(matches!(
            parse_args(&args(&["--bogus"]), None),
            Err(ConfigError::UnknownFlag(_))
        ));
        assert!(matches!(
            parse_args(&args(&["--time-scale"]), None),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(
            parse_args(&args(&["--time-scale", "-1"]), None),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            parse_args(&args(&["--merchant", "wx:1:short:s"]), None),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            parse_args(&[], Some("nonsense")),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
