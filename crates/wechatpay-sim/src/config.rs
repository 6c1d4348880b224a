//! The simulator's settings: its merchants, its clock, and its start-up faults.

use std::net::SocketAddr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use std::sync::Arc;

use serde::Serialize;
use wechat_pay::v2::ApiKey;
use wechat_pay::v3::{ApiV3Key, MerchantKey, WeChatPublicKey};

use crate::faults::Faults;

/// The reference's example merchant: the simulator's default.
pub const DEFAULT_APPID: &str = wechat_pay::example::APPID;
/// Default merchant number.
pub const DEFAULT_MCH_ID: &str = wechat_pay::example::MCH_ID;
/// Default v2 API key.
pub const DEFAULT_API_KEY: &str = wechat_pay::example::API_KEY;
/// Default Mini Program AppSecret.
pub const DEFAULT_APP_SECRET: &str = wechat_pay::example::APP_SECRET;

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
    pub(crate) fn default_merchant() -> Self {
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

/// Which WeChat key signs a merchant's v3 notifications: a platform certificate (older
/// merchants) or the WeChat Pay public key (newer ones, and migrated ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NotifySigner {
    /// The platform certificate ([`wechat_pay::v3::EXAMPLE_PLATFORM_CERT_SERIAL`]).
    Certificate,
    /// The WeChat Pay public key ([`wechat_pay::v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID`]).
    PublicKey,
}

/// The v3 side of the simulator, shared by its merchants (each is the reference's example v3
/// merchant: its private key, certificate serial and APIv3 key), and WeChat's own key, which
/// is both the public key and the platform certificate's.
#[derive(Clone)]
pub struct SimV3 {
    /// Decrypts nothing here; encrypts notifications and certificates.
    pub api_v3_key: ApiV3Key,
    /// The merchant certificate serial requests must name.
    pub merchant_serial: String,
    /// Checks merchants' request signatures.
    pub merchant_public_key: WeChatPublicKey,
    /// WeChat's private key (§8.3): signs answers and notifications.
    pub wechat_key: Arc<MerchantKey>,
    /// The id of WeChat's public key.
    pub public_key_id: String,
    /// The platform certificate's serial.
    pub platform_serial: String,
    /// The platform certificate (PEM).
    pub platform_cert_pem: String,
    /// Who signs notifications at start (switchable per merchant while running).
    pub notify_signer: NotifySigner,
}

impl std::fmt::Debug for SimV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimV3")
            .field("merchant_serial", &self.merchant_serial)
            .field("public_key_id", &self.public_key_id)
            .field("platform_serial", &self.platform_serial)
            .field("notify_signer", &self.notify_signer)
            .finish_non_exhaustive()
    }
}

impl SimV3 {
    /// The `Wechatpay-Serial` of what `signer` signs.
    pub fn serial(&self, signer: NotifySigner) -> &str {
        match signer {
            NotifySigner::Certificate => &self.platform_serial,
            NotifySigner::PublicKey => &self.public_key_id,
        }
    }

    /// The reference's example keys.
    pub fn example(notify_signer: NotifySigner) -> Self {
        use wechat_pay::v3;
        // The example keys are constants checked by wechat-pay's tests.
        SimV3 {
            api_v3_key: ApiV3Key::new(v3::EXAMPLE_API_V3_KEY)
                .unwrap_or_else(|_| unreachable!("the example APIv3 key is 32 characters")),
            merchant_serial: v3::EXAMPLE_MERCHANT_SERIAL.to_owned(),
            merchant_public_key: WeChatPublicKey::from_pem(v3::EXAMPLE_MERCHANT_PUBLIC_KEY_PEM)
                .unwrap_or_else(|_| unreachable!("the example merchant public key is valid")),
            wechat_key: Arc::new(
                MerchantKey::from_pem(v3::EXAMPLE_WECHAT_KEY_PEM, v3::EXAMPLE_PLATFORM_CERT_SERIAL)
                    .unwrap_or_else(|_| unreachable!("the example WeChat key is valid")),
            ),
            public_key_id: v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID.to_owned(),
            platform_serial: v3::EXAMPLE_PLATFORM_CERT_SERIAL.to_owned(),
            platform_cert_pem: v3::EXAMPLE_PLATFORM_CERT_PEM.to_owned(),
            notify_signer,
        }
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
    /// Finish every refund (SUCCESS) this long after it was accepted.
    pub auto_refund_after: Option<Duration>,
    /// Where refund notifications go when the refund request names no `notify_url` (at
    /// WeChat, the URL configured on the merchant platform).
    pub refund_notify_url: Option<String>,
    /// How long a prepay_id stays valid (WeChat: 2 hours).
    pub prepay_ttl: Duration,
    /// How long to wait for a notification receiver's answer (WeChat: about 5 s).
    pub notify_timeout: Duration,
    /// The fee WeChat takes, in basis points (60 = 0.60%), as the daily bill shows it.
    pub fee_rate_bp: u32,
    /// Certificate authorities trusted, besides the system's, when notifications go to an
    /// `https` URL (a test gateway's own CA).
    pub notify_ca: Vec<reqwest::Certificate>,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Serve HTTPS, asking for merchants' client certificates (`/secapi/` requires one),
    /// instead of plain HTTP.
    pub tls: Option<crate::tls::SimTls>,
    /// The v3 keys.
    pub v3: SimV3,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            merchants: vec![SimMerchant::default_merchant()],
            time_scale: 1.0,
            auto_pay_after: None,
            auto_refund_after: None,
            refund_notify_url: None,
            prepay_ttl: Duration::from_secs(2 * 3600),
            notify_timeout: Duration::from_secs(5),
            fee_rate_bp: 60,
            notify_ca: Vec::new(),
            faults: Faults::default(),
            tls: None,
            v3: SimV3::example(NotifySigner::PublicKey),
        }
    }
}

/// A merchant as written in a config file or `--merchant APPID:MCH_ID:KEY:SECRET`.
#[derive(Deserialize)]
struct MerchantSpec {
    appid: String,
    mch_id: String,
    api_key: String,
    app_secret: String,
}

impl TryFrom<MerchantSpec> for SimMerchant {
    type Error = String;

    fn try_from(spec: MerchantSpec) -> Result<Self, String> {
        let valid_appid = spec.appid.len() <= 32
            && !spec.appid.is_empty()
            && spec.appid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid_appid {
            return Err("appid must be 1-32 ASCII letters and digits".into());
        }
        if spec.mch_id.is_empty()
            || spec.mch_id.len() > 32
            || !spec.mch_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("mch_id must be 1-32 digits".into());
        }
        Ok(SimMerchant {
            appid: spec.appid,
            mch_id: spec.mch_id,
            key: ApiKey::new(spec.api_key).map_err(|e| e.to_string())?,
            app_secret: spec.app_secret,
        })
    }
}

/// `--merchant APPID:MCH_ID:KEY:SECRET`.
fn merchant_flag(value: &str) -> Result<SimMerchant, String> {
    let parts: Vec<&str> = value.splitn(4, ':').collect();
    let [appid, mch_id, api_key, app_secret] = parts[..] else {
        return Err("expected APPID:MCH_ID:KEY:SECRET".into());
    };
    SimMerchant::try_from(MerchantSpec {
        appid: appid.into(),
        mch_id: mch_id.into(),
        api_key: api_key.into(),
        app_secret: app_secret.into(),
    })
}

/// The merchants of one `--config` file.
#[derive(Debug, Clone)]
struct MerchantFile(Vec<SimMerchant>);

#[derive(Deserialize)]
struct FileConfig {
    merchants: Vec<MerchantSpec>,
}

/// `--config FILE`: read and validated while the command line is parsed, so a bad file is an
/// error that names the flag.
fn config_flag(path: &str) -> Result<MerchantFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let file: FileConfig =
        serde_json::from_str(&text).map_err(|e| format!("cannot parse {path}: {e}"))?;
    file.merchants
        .into_iter()
        .enumerate()
        .map(|(i, spec)| SimMerchant::try_from(spec).map_err(|e| format!("merchant {i}: {e}")))
        .collect::<Result<_, _>>()
        .map(MerchantFile)
}

fn duration_flag(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{e} (expected e.g. 500ms, 5s, 2m)"))
}

fn latency_flag(value: &str) -> Result<Duration, String> {
    let latency = duration_flag(value)?;
    if latency > MAX_LATENCY {
        return Err("must be at most 60s".into());
    }
    Ok(latency)
}

/// `0.6%` (or `0.6`) as basis points: at most two decimals, at most 100%.
fn fee_rate_flag(value: &str) -> Result<u32, String> {
    let number = value.strip_suffix('%').unwrap_or(value);
    let bp = wechat_pay::v2::bill::parse_yuan(number, 2, false)
        .ok_or("a percentage with at most two decimals, e.g. 0.6%")?;
    u32::try_from(bp)
        .ok()
        .filter(|&bp| bp <= 10_000)
        .ok_or_else(|| "at most 100%".to_owned())
}

fn time_scale_flag(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if !(f.is_finite() && f > 0.0) {
        return Err("must be a positive number".into());
    }
    Ok(f)
}

fn rate_flag(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=1.0).contains(&f) {
        return Err("must be between 0 and 1".into());
    }
    Ok(f)
}

/// The longest `--latency` (`Faults::validate` allows 60 000 ms).
const MAX_LATENCY: Duration = Duration::from_secs(60);

/// wechatpay-sim: a WeChat Pay v2 and v3 merchant API and Mini Program login simulator
#[derive(Debug, Parser)]
#[command(name = "wechatpay-sim", version)]
struct Args {
    /// Where to listen [env: SIM_LISTEN] [default: 127.0.0.1:8090]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Add a merchant (repeatable; replaces the default merchant)
    #[arg(long, value_name = "APPID:MCH_ID:KEY:SECRET", value_parser = merchant_flag)]
    merchant: Vec<SimMerchant>,
    /// JSON file {"merchants": [{"appid", "mch_id", "api_key", "app_secret"}]} (repeatable)
    #[arg(long, value_name = "FILE", value_parser = config_flag)]
    config: Vec<MerchantFile>,
    /// Multiply the notification retry schedule and code lifetimes (tests use 0.001)
    #[arg(long, value_name = "F", default_value = "1.0", value_parser = time_scale_flag, allow_negative_numbers = true)]
    time_scale: f64,
    /// Pay every prepaid order DURATION after its prepay (e.g. 2s, 500ms)
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    auto_pay_after: Option<Duration>,
    /// Finish every refund (SUCCESS, then notify) DURATION after it was accepted
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    auto_refund_after: Option<Duration>,
    /// Where refund notifications go when a refund request names no notify_url
    #[arg(long, value_name = "URL")]
    refund_notify_url: Option<String>,
    /// How long a prepay_id stays valid
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = duration_flag)]
    prepay_ttl: Duration,
    /// How long to wait for a notification receiver's answer
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration_flag)]
    notify_timeout: Duration,
    /// The fee on the daily bill, a percentage with at most two decimals (0.60%)
    #[arg(long, value_name = "PERCENT", default_value = "0.6%", value_parser = fee_rate_flag)]
    fee_rate: u32,
    /// A PEM file with a CA certificate to trust for https notification URLs (besides the
    /// system's roots), e.g. the certificate of a local API gateway
    #[arg(long, value_name = "PEM_FILE")]
    notify_ca: Option<std::path::PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key and --client-ca
    #[arg(long, value_name = "PEM_FILE", requires_all = ["tls_key", "client_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// The key of --tls-cert (PEM)
    #[arg(long, value_name = "PEM_FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The CA that signs merchants' client certificates (PEM); /secapi/ (the refund) refuses
    /// a request whose connection presented none
    #[arg(long, value_name = "PEM_FILE", requires = "tls_cert")]
    client_ca: Option<std::path::PathBuf>,
    /// Fault: delay every merchant API answer (at most 60s)
    #[arg(long, value_name = "DURATION", value_parser = latency_flag)]
    latency: Option<Duration>,
    /// Fault: answer SYSTEMERROR on this fraction (0..1) of merchant API calls
    #[arg(long, value_name = "F", value_parser = rate_flag, allow_negative_numbers = true)]
    system_error_rate: Option<f64>,
    /// Fault: never send notifications
    #[arg(long)]
    drop_notifications: bool,
    /// Fault: send N concurrent copies of every notification (at most 100)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    duplicate_notifications: Option<u32>,
    /// Fault: hold notifications until N are pending, then send newest first (at most 1000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1000))]
    reorder_notifications: Option<u32>,
    /// Fault: every notification's first delivery waits this long (e.g. 70s; at most 1h)
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    delay_notifications: Option<Duration>,
    /// Fault: notifications carry total_fee + 1 (validly signed)
    #[arg(long)]
    wrong_amount: bool,
    /// Fault: notifications carry a wrong signature
    #[arg(long)]
    forge_signature: bool,
    /// Which WeChat key signs v3 notifications at start (switch while running with
    /// PUT /sim/v1/merchants/{mch_id}/v3-notify-signer)
    #[arg(long, value_name = "KEY", value_enum, default_value = "public-key")]
    v3_notify_signer: NotifySigner,
}

/// Parses the command line (`args` starts with the program name); `listen_env` is
/// `SIM_LISTEN`, which `--listen` overrides. `--help` and `--version` come back as errors
/// whose [`clap::Error::exit_code`] is 0: print them and stop.
pub fn parse_args<I, T>(args: I, listen_env: Option<&str>) -> Result<SimConfig, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Args::command();
    let matches = command.try_get_matches_from_mut(args)?;
    let args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    let listen = match (args.listen, listen_env) {
        (Some(flag), _) => flag,
        (None, Some(env)) => env.parse().map_err(|e| {
            command.error(
                ErrorKind::InvalidValue,
                format!("invalid value '{env}' for SIM_LISTEN: {e}"),
            )
        })?,
        (None, None) => SimConfig::default().listen,
    };
    let faults = Faults {
        latency_ms: args
            .latency
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        system_error_rate: args.system_error_rate.unwrap_or(0.0),
        system_error_next: 0,
        drop_notifications: args.drop_notifications,
        duplicate_notifications: args.duplicate_notifications.unwrap_or(0),
        reorder_notifications: args.reorder_notifications.unwrap_or(0),
        delay_notifications_ms: args
            .delay_notifications
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        wrong_amount: args.wrong_amount,
        forge_signature: args.forge_signature,
        sign_test_next: 0,
    };
    faults
        .validate()
        .map_err(|e| command.error(ErrorKind::ValueValidation, e))?;
    let notify_ca = match args.notify_ca {
        None => Vec::new(),
        Some(path) => read_ca(&path).map_err(|e| {
            command.error(
                ErrorKind::InvalidValue,
                format!("--notify-ca {}: {e}", path.display()),
            )
        })?,
    };
    let tls = match (&args.tls_cert, &args.tls_key, &args.client_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(
            crate::tls::SimTls::from_files(cert, key, ca)
                .map_err(|e| command.error(ErrorKind::InvalidValue, format!("--tls-cert: {e}")))?,
        ),
        _ => None,
    };
    Ok(SimConfig {
        listen,
        tls,
        merchants: merchants_in_order(&matches, args.merchant, args.config),
        time_scale: args.time_scale,
        auto_pay_after: args.auto_pay_after,
        auto_refund_after: args.auto_refund_after,
        refund_notify_url: args.refund_notify_url,
        prepay_ttl: args.prepay_ttl,
        notify_timeout: args.notify_timeout,
        fee_rate_bp: args.fee_rate,
        notify_ca,
        faults,
        v3: SimV3::example(args.v3_notify_signer),
    })
}

/// The certificates of a PEM file; a file without one is refused.
fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// The merchants of `--merchant` and `--config` in command-line order (the first is the
/// default), or the default merchant when there are none.
fn merchants_in_order(
    matches: &ArgMatches,
    flags: Vec<SimMerchant>,
    files: Vec<MerchantFile>,
) -> Vec<SimMerchant> {
    let indices = |id| matches.indices_of(id).into_iter().flatten();
    let mut placed: Vec<(usize, Vec<SimMerchant>)> = indices("merchant")
        .zip(flags)
        .map(|(i, m)| (i, vec![m]))
        .chain(indices("config").zip(files).map(|(i, f)| (i, f.0)))
        .collect();
    placed.sort_by_key(|(i, _)| *i);
    let merchants: Vec<SimMerchant> = placed.into_iter().flat_map(|(_, m)| m).collect();
    if merchants.is_empty() {
        vec![SimMerchant::default_merchant()]
    } else {
        merchants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], listen_env: Option<&str>) -> Result<SimConfig, clap::Error> {
        parse_args(
            std::iter::once("wechatpay-sim").chain(args.iter().copied()),
            listen_env,
        )
    }

    /// The error's kind, and that its message names `flag`.
    fn refused(args: &[&str], listen_env: Option<&str>, flag: &str) -> ErrorKind {
        let err = parse(args, listen_env).unwrap_err();
        let message = err.render().to_string();
        assert!(message.contains(flag), "{message}");
        err.kind()
    }

    #[test]
    fn flags() {
        let c = parse(
            &[
                "--listen",
                "127.0.0.1:0",
                "--time-scale",
                "0.001",
                "--auto-pay-after",
                "2s",
                "--merchant",
                "wx1234:1900000109:0123456789abcdef0123456789abcdef:s3cret",
                "--latency",
                "200ms",
                "--system-error-rate",
                "0.1",
                "--drop-notifications",
                "--duplicate-notifications",
                "5",
                "--reorder-notifications",
                "2",
                "--delay-notifications",
                "70s",
                "--wrong-amount",
                "--forge-signature",
            ],
            Some("127.0.0.1:9999"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.time_scale, 0.001);
        assert_eq!(c.auto_pay_after, Some(Duration::from_secs(2)));
        assert_eq!(c.merchants.len(), 1);
        assert_eq!(c.merchants[0].mch_id, "1900000109");
        assert_eq!(
            c.faults,
            Faults {
                latency_ms: 200,
                system_error_rate: 0.1,
                system_error_next: 0,
                drop_notifications: true,
                duplicate_notifications: 5,
                reorder_notifications: 2,
                delay_notifications_ms: 70_000,
                wrong_amount: true,
                forge_signature: true,
                sign_test_next: 0,
            }
        );
    }

    #[test]
    fn defaults_and_the_environment() {
        let c = parse(&[], None).unwrap();
        let d = SimConfig::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.time_scale, 1.0);
        assert_eq!(c.prepay_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(c.notify_timeout, Duration::from_secs(5));
        assert_eq!(c.auto_pay_after, None);
        assert_eq!(c.faults, Faults::default());
        assert_eq!(c.merchants[0].mch_id, DEFAULT_MCH_ID);
        let c = parse(
            &["--prepay-ttl", "15m", "--notify-timeout", "250ms"],
            Some("0.0.0.0:1"),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:1".parse().unwrap());
        assert_eq!(c.prepay_ttl, Duration::from_secs(900));
        assert_eq!(c.notify_timeout, Duration::from_millis(250));
    }

    #[test]
    fn merchants_keep_command_line_order() {
        let dir = std::env::temp_dir().join(format!("wechatpay-sim-config-{}", std::process::id()));
        std::fs::write(
            &dir,
            r#"{"merchants": [{"appid": "wxfile", "mch_id": "222", "api_key": "0123456789abcdef0123456789abcdef", "app_secret": "s"}]}"#,
        )
        .unwrap();
        let path = dir.to_str().unwrap();
        let c = parse(
            &[
                "--config",
                path,
                "--merchant",
                "wxflag:111:0123456789abcdef0123456789abcdef:s",
            ],
            None,
        );
        std::fs::remove_file(&dir).unwrap();
        let ids: Vec<String> = c.unwrap().merchants.into_iter().map(|m| m.mch_id).collect();
        assert_eq!(ids, ["222", "111"]);
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(
            refused(&["--bogus"], None, "--bogus"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            refused(&["--time-scale"], None, "--time-scale"),
            ErrorKind::InvalidValue
        );
        for (flag, value) in [
            ("--time-scale", "-1"),
            ("--time-scale", "fast"),
            ("--merchant", "wx:1:short:s"),
            ("--merchant", "wx:1"),
            ("--config", "/no/such/file.json"),
            ("--auto-pay-after", "5"),
            ("--prepay-ttl", "soon"),
            ("--latency", "2m"),
            ("--system-error-rate", "1.5"),
            ("--duplicate-notifications", "101"),
            ("--reorder-notifications", "1001"),
            ("--system-error-rate", "-0.1"),
            ("--listen", "nowhere"),
        ] {
            assert_eq!(
                refused(&[flag, value], None, flag),
                ErrorKind::ValueValidation,
                "{flag} {value}"
            );
        }
        for ca in [
            "/no/such/ca.pem",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ] {
            assert_eq!(
                refused(&["--notify-ca", ca], None, "--notify-ca"),
                ErrorKind::InvalidValue,
                "{ca}"
            );
        }
        assert_eq!(
            refused(&[], Some("nonsense"), "SIM_LISTEN"),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            parse(&["--help"], None).unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
    }
}
