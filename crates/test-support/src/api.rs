//! order-svc's public HTTP API as a test calls it: every call gives its status, headers and
//! JSON body; the helpers for the common calls check the status they must answer.

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// An answer of the API.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body (`Null` when there is none or it is not JSON).
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer (`""` otherwise).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// A client of order-svc's HTTP API at `base`.
#[derive(Debug, Clone)]
pub struct OrderApi {
    /// The HTTP client (for calls outside the API, e.g. `/metrics`).
    pub http: reqwest::Client,
    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub base: String,
}

impl OrderApi {
    /// A client of the order-svc at `base`.
    pub fn new(base: impl Into<String>) -> OrderApi {
        OrderApi {
            http: reqwest::Client::new(),
            base: base.into(),
        }
    }

    /// Any call: `path` is relative to the base URL; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Logs `name` in with a fresh simulator code (`test-<name>.<random>`); the token.
    pub async fn login(&self, name: &str) -> String {
        let code = format!("test-{name}.{:08x}", rand::rng().random::<u32>());
        let a = self
            .call(
                Method::POST,
                "/api/v1/sessions",
                None,
                Some(&format!(r#"{{"code":"{code}"}}"#)),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "login: {}", a.body);
        assert!(a.body["expires_in"].as_u64().unwrap() > 0);
        a.body["token"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/orders` with this JSON body.
    pub async fn create(&self, token: &str, body: &str) -> Answer {
        self.call(Method::POST, "/api/v1/orders", Some(token), Some(body), &[])
            .await
    }

    /// `GET /api/v1/orders/{id}`.
    pub async fn get(&self, token: &str, id: &str) -> Answer {
        let path = format!("/api/v1/orders/{id}");
        self.call(Method::GET, &path, Some(token), None, &[]).await
    }

    /// `GET /api/v1/orders` (the first page).
    pub async fn list(&self, token: &str) -> Answer {
        self.call(Method::GET, "/api/v1/orders", Some(token), None, &[])
            .await
    }

    /// `POST /api/v1/orders/{id}/payment`.
    pub async fn pay(&self, token: &str, id: &str) -> Answer {
        let path = format!("/api/v1/orders/{id}/payment");
        self.call(Method::POST, &path, Some(token), None, &[]).await
    }

    /// `POST /api/v1/orders/{id}/cancel`.
    pub async fn cancel(&self, token: &str, id: &str) -> Answer {
        let path = format!("/api/v1/orders/{id}/cancel");
        self.call(Method::POST, &path, Some(token), None, &[]).await
    }
}
