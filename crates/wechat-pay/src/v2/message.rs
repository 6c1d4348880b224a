//! The bridge between typed messages (serde) and the flat parameter map.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Params;

/// Why a typed message and a parameter map do not fit each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A field cannot be flat text (a nested object or list).
    #[error("field `{0}` is not a flat value")]
    NotFlat(String),
    /// A required field is missing or a field holds an invalid value.
    #[error("{0}")]
    Invalid(String),
}

/// Writes a typed message as parameters: strings as they are, numbers in decimal, `None`
/// fields left out.
pub fn to_params<T: Serialize>(message: &T) -> Result<Params, MessageError> {
    let value = serde_json::to_value(message).map_err(|e| MessageError::Invalid(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(MessageError::NotFlat("<message>".into()));
    };
    let mut params = Params::new();
    for (name, value) in map {
        match value {
            Value::Null => {}
            Value::String(s) => {
                params.insert(name, s);
            }
            Value::Number(n) => {
                params.insert(name, n.to_string());
            }
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                return Err(MessageError::NotFlat(name));
            }
        }
    }
    Ok(params)
}

/// Reads a typed message from parameters. Every value arrives as text; amounts and times
/// parse strictly from it. Fields the type does not name land in its `extra` map.
pub fn from_params<T: DeserializeOwned>(params: Params) -> Result<T, MessageError> {
    let map: Map<String, Value> = params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_json::from_value(Value::Object(map)).map_err(|e| MessageError::Invalid(e.to_string()))
}
