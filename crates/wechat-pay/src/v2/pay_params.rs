//! The object a Mini Program passes to `wx.requestPayment` (v2 paySign).

use serde::{Deserialize, Serialize};

use super::Params;
use super::sign::{ApiKey, SignType, SignatureError, sign, verify};
use crate::domain::NonceStr;

/// Exactly what `wx.requestPayment` takes, plus `appId` (signed, and useful to the client to
/// check it is paying in the right Mini Program).
///
/// ```
/// use wechat_pay::NonceStr;
/// use wechat_pay::v2::{ApiKey, RequestPayment, SignType};
/// // V2-PAYSIGN, the official example.
/// let key = ApiKey::new("qazwsxedcrfvtgbyhnujmikolp111111").unwrap();
/// let nonce = NonceStr::parse("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap();
/// let params = RequestPayment::sign_with(
///     "wxd678efh567hg6787", "wx2017033010242291fcfe0db70013231072",
///     SignType::Md5, &key, 1490840662, &nonce,
/// );
/// assert_eq!(params.pay_sign, "22D9B4E54AB1950F51E0649E8810ACD6");
/// assert_eq!(params.package, "prepay_id=wx2017033010242291fcfe0db70013231072");
/// assert_eq!(params.time_stamp, "1490840662");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPayment {
    /// The appid of unified order (signed; capital I).
    #[serde(rename = "appId")]
    pub app_id: String,
    /// Unix seconds as a string (capital S).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// A random string.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=<prepay_id>`.
    pub package: String,
    /// `MD5` or `HMAC-SHA256`, the same as unified order's `sign_type`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// The signature over the five fields above.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

impl RequestPayment {
    /// Signs the payment parameters for `prepay_id` now, with a fresh nonce.
    pub fn new(appid: &str, prepay_id: &str, sign_type: SignType, key: &ApiKey) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::sign_with(appid, prepay_id, sign_type, key, now, &NonceStr::generate())
    }

    /// Signs the payment parameters with a given time and nonce.
    pub fn sign_with(
        appid: &str,
        prepay_id: &str,
        sign_type: SignType,
        key: &ApiKey,
        unix_seconds: u64,
        nonce: &NonceStr,
    ) -> Self {
        let mut params = RequestPayment {
            app_id: appid.to_owned(),
            time_stamp: unix_seconds.to_string(),
            nonce_str: nonce.to_string(),
            package: format!("prepay_id={prepay_id}"),
            sign_type: sign_type.as_str().to_owned(),
            pay_sign: String::new(),
        };
        params.pay_sign = sign(&params.signed_fields(), key, sign_type);
        params
    }

    /// The five signed fields.
    fn signed_fields(&self) -> Params {
        [
            ("appId", self.app_id.as_str()),
            ("nonceStr", self.nonce_str.as_str()),
            ("package", self.package.as_str()),
            ("signType", self.sign_type.as_str()),
            ("timeStamp", self.time_stamp.as_str()),
        ]
        .into_iter()
        .collect()
    }

    /// Verifies `paySign` (what WeChat does when the client calls `wx.requestPayment`).
    pub fn verify(&self, key: &ApiKey) -> Result<(), SignatureError> {
        let sign_type: SignType = self.sign_type.parse()?;
        let mut fields = self.signed_fields();
        fields.insert("sign", self.pay_sign.clone());
        verify(&fields, key, sign_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official() -> (ApiKey, NonceStr) {
        (
            ApiKey::new("qazwsxedcrfvtgbyhnujmikolp111111").unwrap(),
            NonceStr::parse("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap(),
        )
    }

    /// V2-PAYSIGN, MD5 and the HMAC-SHA256 variant, and the exact JSON handed to the client.
    #[test]
    fn vector_v2_paysign() {
        let (key, nonce) = official();
        let prepay = "wx2017033010242291fcfe0db70013231072";
        let md5 = RequestPayment::sign_with(
            "wxd678efh567hg6787",
            prepay,
            SignType::Md5,
            &key,
            1490840662,
            &nonce,
        );
        assert_eq!(md5.pay_sign, "22D9B4E54AB1950F51E0649E8810ACD6");
        assert_eq!(md5.verify(&key), Ok(()));
        let hmac = RequestPayment::sign_with(
            "wxd678efh567hg6787",
            prepay,
            SignType::HmacSha256,
            &key,
            1490840662,
            &nonce,
        );
        assert_eq!(
            hmac.pay_sign,
            "FB9D1EFB5C509131BBFF729F88A99CA2DE9B724D06D3B3262832A53083862BC0"
        );
        let json = serde_json::to_value(&md5).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            r#"{"appId":"wxd678efh567hg6787","timeStamp":"1490840662","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"MD5","paySign":"22D9B4E54AB1950F51E0649E8810ACD6"}"#,
        )
        .unwrap();
        assert_eq!(json, expected);
    }

    #[test]
    fn tampering_breaks_pay_sign() {
        let (key, nonce) = official();
        let mut p =
            RequestPayment::sign_with("wxd678efh567hg6787", "wx1", SignType::Md5, &key, 1, &nonce);
        p.package = "prepay_id=wx2".into();
        assert_eq!(p.verify(&key), Err(SignatureError::Mismatch));
    }
}
