//! Settings from the environment (12-factor). Every service builds one `Settings` value from
//! a [`Source`]; tests build settings as values and never touch the process environment.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// Why the settings could not be loaded. The message always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is not set (or empty).
    #[error("environment variable {name} is required but not set")]
    Missing {
        /// The variable.
        name: String,
    },
    /// A merchant setting is missing and simulator mode was not asked for.
    #[error(
        "environment variable {name} is required: set the merchant's settings, or WECHAT_MODE=simulator to use the WeChat Pay simulator's example merchant"
    )]
    MerchantMissing {
        /// The variable.
        name: String,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Why (never the value itself: it may be a secret).
        reason: String,
    },
}

/// Where settings come from.
pub trait Source {
    /// The value of `name`, if set and not empty.
    fn get(&self, name: &str) -> Option<String>;

    /// A required value, parsed.
    fn required<T: FromStr>(&self, name: &str) -> Result<T, SettingsError>
    where
        T::Err: Display,
        Self: Sized,
    {
        let raw = self.get(name).ok_or_else(|| SettingsError::Missing {
            name: name.to_owned(),
        })?;
        parse(name, &raw)
    }

    /// An optional value, parsed.
    fn optional<T: FromStr>(&self, name: &str) -> Result<Option<T>, SettingsError>
    where
        T::Err: Display,
        Self: Sized,
    {
        self.get(name).map(|raw| parse(name, &raw)).transpose()
    }

    /// A value with a default, parsed.
    fn or<T: FromStr>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T::Err: Display,
        Self: Sized,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// An `on` / `off` switch.
    fn on_off_or(&self, name: &str, default: bool) -> Result<bool, SettingsError>
    where
        Self: Sized,
    {
        match self.get(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(_) => Err(SettingsError::Invalid {
                name: name.to_owned(),
                reason: "expected on or off".into(),
            }),
        }
    }

    /// A duration such as `500ms`, `15s`, `15m`, `2h` or `1m 30s` (humantime's syntax).
    fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, SettingsError>
    where
        Self: Sized,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => {
                humantime::parse_duration(raw.trim()).map_err(|e| SettingsError::Invalid {
                    name: name.to_owned(),
                    reason: format!("expected a duration such as 500ms, 15s, 15m or 2h ({e})"),
                })
            }
        }
    }
}

/// Whose merchant a service works for (`WECHAT_MODE`). Fail closed: without an explicit
/// `simulator`, the merchant's own settings are required, so a deployment that forgets them
/// does not start trusting the simulator's published example key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeChatMode {
    /// `WECHAT_MODE=simulator`: the WeChat Pay simulator's example merchant, each value
    /// overridable.
    Simulator,
    /// `WECHAT_MODE=production`, or unset: every merchant setting is required.
    Production,
}

impl WeChatMode {
    /// Reads `WECHAT_MODE` (`simulator` or `production`; unset is `production`).
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        match env.get("WECHAT_MODE").as_deref().map(str::trim) {
            None | Some("production") => Ok(WeChatMode::Production),
            Some("simulator") => Ok(WeChatMode::Simulator),
            Some(_) => Err(SettingsError::Invalid {
                name: "WECHAT_MODE".into(),
                reason: "expected simulator or production".into(),
            }),
        }
    }

    /// A merchant setting: in simulator mode `name` or else `example` (the simulator's
    /// value); otherwise `name` is required.
    pub fn merchant(
        self,
        env: &impl Source,
        name: &str,
        example: &str,
    ) -> Result<String, SettingsError> {
        match (self, env.get(name)) {
            (_, Some(value)) => Ok(value.trim().to_owned()),
            (WeChatMode::Simulator, None) => Ok(example.to_owned()),
            (WeChatMode::Production, None) => Err(SettingsError::MerchantMissing {
                name: name.to_owned(),
            }),
        }
    }
}

impl WeChatMode {
    /// A PEM setting, from the file `{name}_FILE` names (a mounted secret) or inline in
    /// `name`; when neither is set, in simulator mode `example`, otherwise `None`. Both set is
    /// refused, and an unreadable file names its variable (never the content).
    pub fn pem(
        self,
        env: &impl Source,
        name: &str,
        example: &str,
    ) -> Result<Option<String>, SettingsError> {
        let file_var = format!("{name}_FILE");
        match (env.get(&file_var), env.get(name)) {
            (Some(_), Some(_)) => Err(SettingsError::Invalid {
                name: file_var,
                reason: format!("set either {name}_FILE or {name}, not both"),
            }),
            (Some(path), None) => {
                std::fs::read_to_string(path.trim())
                    .map(Some)
                    .map_err(|e| SettingsError::Invalid {
                        name: file_var,
                        reason: format!("cannot read {}: {e}", path.trim()),
                    })
            }
            (None, Some(inline)) => Ok(Some(inline)),
            (None, None) if self == WeChatMode::Simulator => Ok(Some(example.to_owned())),
            (None, None) => Ok(None),
        }
    }
}

impl WeChatMode {
    /// The WeChat Pay public key's id and the key `parse` reads from its PEM
    /// (`WECHAT_PUBLIC_KEY_ID`, and `WECHAT_PUBLIC_KEY_FILE` or `WECHAT_PUBLIC_KEY`), if given; in
    /// simulator mode the examples when unset. One without the other, an id not starting with
    /// `id_prefix`, or a PEM `parse` refuses, is refused naming its variable.
    pub fn wechat_public_key<K, E: Display>(
        self,
        env: &impl Source,
        parse: impl FnOnce(&str) -> Result<K, E>,
        example_pem: &str,
        example_id: &str,
        id_prefix: &str,
    ) -> Result<Option<(String, K)>, SettingsError> {
        let pem = self.pem(env, "WECHAT_PUBLIC_KEY", example_pem)?;
        let id = match (env.get("WECHAT_PUBLIC_KEY_ID"), self) {
            (Some(id), _) => Some(id.trim().to_owned()),
            (None, WeChatMode::Simulator) => Some(example_id.to_owned()),
            (None, WeChatMode::Production) => None,
        };
        match (pem, id) {
            (None, None) => Ok(None),
            (Some(_), Some(id)) if !id.starts_with(id_prefix) => Err(SettingsError::Invalid {
                name: "WECHAT_PUBLIC_KEY_ID".into(),
                reason: format!("expected an id starting {id_prefix}"),
            }),
            (Some(pem), Some(id)) => match parse(&pem) {
                Ok(key) => Ok(Some((id, key))),
                Err(e) => Err(SettingsError::Invalid {
                    name: "WECHAT_PUBLIC_KEY_FILE".into(),
                    reason: e.to_string(),
                }),
            },
            (Some(_), None) => Err(SettingsError::Missing {
                name: "WECHAT_PUBLIC_KEY_ID".into(),
            }),
            (None, Some(_)) => Err(SettingsError::Missing {
                name: "WECHAT_PUBLIC_KEY_FILE".into(),
            }),
        }
    }
}

/// Whether the merchant speaks WeChat Pay API v3 (`WECHAT_API_VERSION`: `v2`, the default, or
/// `v3`).
pub fn wechat_api_v3(env: &impl Source) -> Result<bool, SettingsError> {
    match env.get("WECHAT_API_VERSION").as_deref().map(str::trim) {
        None | Some("v2") => Ok(false),
        Some("v3") => Ok(true),
        Some(_) => Err(SettingsError::Invalid {
            name: "WECHAT_API_VERSION".into(),
            reason: "expected v2 or v3".into(),
        }),
    }
}

fn parse<T: FromStr>(name: &str, raw: &str) -> Result<T, SettingsError>
where
    T::Err: Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| SettingsError::Invalid {
            name: name.to_owned(),
            reason: e.to_string(),
        })
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed map (tests, and tools that compute a service's environment).
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    /// From pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        MapEnv(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl Source for MapEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn errors_name_the_variable_and_not_the_value() {
        let env = MapEnv::from_pairs([("PORT", "eighty"), ("TTL", "5x"), ("SECRET", "hunter2")]);
        let missing = env.required::<String>("DATABASE_URL").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "environment variable DATABASE_URL is required but not set"
        );
        let invalid = env.required::<SocketAddr>("PORT").unwrap_err();
        assert!(
            invalid
                .to_string()
                .starts_with("environment variable PORT is invalid"),
            "{invalid}"
        );
        assert!(!invalid.to_string().contains("eighty"));
        assert!(
            env.duration_or("TTL", Duration::ZERO)
                .unwrap_err()
                .to_string()
                .contains("TTL")
        );
        assert_eq!(env.or("ABSENT", 7u16), Ok(7));
        assert_eq!(
            env.duration_or("ABSENT", Duration::from_secs(3)),
            Ok(Duration::from_secs(3))
        );
    }

    #[test]
    fn the_api_version_and_pem_settings_name_their_variable() {
        assert!(!wechat_api_v3(&MapEnv::default()).unwrap());
        assert!(wechat_api_v3(&MapEnv::from_pairs([("WECHAT_API_VERSION", "v3")])).unwrap());
        assert!(wechat_api_v3(&MapEnv::from_pairs([("WECHAT_API_VERSION", "3")])).is_err());
        let sim = WeChatMode::Simulator;
        let prod = WeChatMode::Production;
        let none = MapEnv::default();
        assert_eq!(
            sim.pem(&none, "KEY", "example").unwrap().as_deref(),
            Some("example")
        );
        assert_eq!(prod.pem(&none, "KEY", "example").unwrap(), None);
        let inline = MapEnv::from_pairs([("KEY", "inline")]);
        assert_eq!(
            prod.pem(&inline, "KEY", "x").unwrap().as_deref(),
            Some("inline")
        );
        let both = MapEnv::from_pairs([("KEY", "inline"), ("KEY_FILE", "/k.pem")]);
        let missing = MapEnv::from_pairs([("KEY_FILE", "/nonexistent/k.pem")]);
        for env in [both, missing] {
            match prod.pem(&env, "KEY", "x") {
                Err(SettingsError::Invalid { name, reason }) => {
                    assert_eq!(name, "KEY_FILE");
                    assert!(!reason.contains("inline"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        let parse = |pem: &str| {
            if pem == "good" {
                Ok(7)
            } else {
                Err("not a key")
            }
        };
        let key = |pairs: &[(&str, &str)]| {
            WeChatMode::Production.wechat_public_key(
                &MapEnv::from_pairs(pairs.iter().copied()),
                parse,
                "",
                "",
                "PUB_",
            )
        };
        assert_eq!(key(&[]).unwrap(), None);
        assert_eq!(
            key(&[
                ("WECHAT_PUBLIC_KEY", "good"),
                ("WECHAT_PUBLIC_KEY_ID", "PUB_1")
            ])
            .unwrap(),
            Some(("PUB_1".to_owned(), 7))
        );
        for (pairs, variable) in [
            (&[("WECHAT_PUBLIC_KEY", "good")][..], "WECHAT_PUBLIC_KEY_ID"),
            (
                &[("WECHAT_PUBLIC_KEY_ID", "PUB_1")][..],
                "WECHAT_PUBLIC_KEY_FILE",
            ),
            (
                &[
                    ("WECHAT_PUBLIC_KEY", "good"),
                    ("WECHAT_PUBLIC_KEY_ID", "KEY_1"),
                ][..],
                "WECHAT_PUBLIC_KEY_ID",
            ),
            (
                &[
                    ("WECHAT_PUBLIC_KEY", "bad"),
                    ("WECHAT_PUBLIC_KEY_ID", "PUB_1"),
                ][..],
                "WECHAT_PUBLIC_KEY_FILE",
            ),
        ] {
            match key(pairs) {
                Err(SettingsError::Missing { name } | SettingsError::Invalid { name, .. }) => {
                    assert_eq!(name, variable, "{pairs:?}");
                }
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn merchant_settings_are_required_unless_simulator_mode_is_asked_for() {
        let none = MapEnv::default();
        let mode = WeChatMode::from_source(&none).unwrap();
        assert_eq!(mode, WeChatMode::Production);
        let err = mode
            .merchant(&none, "WECHAT_MCH_ID", "10000100")
            .unwrap_err();
        assert!(
            err.to_string().contains("WECHAT_MCH_ID")
                && err.to_string().contains("WECHAT_MODE=simulator"),
            "{err}"
        );
        let sim = MapEnv::from_pairs([("WECHAT_MODE", "simulator")]);
        let mode = WeChatMode::from_source(&sim).unwrap();
        assert_eq!(mode, WeChatMode::Simulator);
        assert_eq!(
            mode.merchant(&sim, "WECHAT_MCH_ID", "10000100").unwrap(),
            "10000100"
        );
        let own = MapEnv::from_pairs([("WECHAT_MODE", "production"), ("WECHAT_MCH_ID", "19")]);
        let mode = WeChatMode::from_source(&own).unwrap();
        assert_eq!(
            mode.merchant(&own, "WECHAT_MCH_ID", "10000100").unwrap(),
            "19"
        );
        let bad = MapEnv::from_pairs([("WECHAT_MODE", "sandbox")]);
        assert!(
            WeChatMode::from_source(&bad)
                .unwrap_err()
                .to_string()
                .contains("WECHAT_MODE")
        );
    }

    #[test]
    fn durations() {
        let env = MapEnv::from_pairs([
            ("A", "250ms"),
            ("B", "10s"),
            ("C", "5m"),
            ("D", "2h"),
            ("E", " 15m "),
            ("F", "-1s"),
            ("G", "7"),
        ]);
        let got = |name| env.duration_or(name, Duration::ZERO);
        assert_eq!(got("A"), Ok(Duration::from_millis(250)));
        assert_eq!(got("B"), Ok(Duration::from_secs(10)));
        assert_eq!(got("C"), Ok(Duration::from_secs(300)));
        assert_eq!(got("D"), Ok(Duration::from_secs(7200)));
        assert_eq!(got("E"), Ok(Duration::from_secs(900)));
        for name in ["F", "G"] {
            let err = got(name).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
