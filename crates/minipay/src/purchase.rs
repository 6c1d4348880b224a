//! One real purchase through the public HTTP API and the simulator's control API: log in,
//! read the price list, create an order, get the payment object, the user pays in WeChat
//! (the simulator), and the notification makes the order PAID.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// The steps of a purchase, and of the other calls a [`Shop`] makes, as a user reads them.
pub mod step {
    /// `wx.login`'s code exchanged for a session token.
    pub const LOGIN: &str = "login";
    /// The price list read.
    pub const PRICE_LIST: &str = "price list";
    /// The order created.
    pub const CREATE_ORDER: &str = "create order";
    /// The `wx.requestPayment` object fetched (WeChat's prepay behind it).
    pub const PREPAY: &str = "prepay";
    /// The user pays in WeChat (the simulator's control API).
    pub const USER_PAYS: &str = "user pays (simulator)";
    /// The notification makes the order PAID.
    pub const PAID: &str = "notification -> PAID";
    /// The order read back.
    pub const READ_ORDER: &str = "read order";
    /// The order waited for until it has a given status.
    pub const WAIT_STATUS: &str = "wait for the order's status";
    /// The simulator's view of an order read.
    pub const AT_WECHAT: &str = "read order at WeChat (simulator)";
    /// The simulator's faults set.
    pub const FAULTS: &str = "set simulator faults";
    /// The simulator's health read.
    pub const SIM_HEALTH: &str = "simulator health";
}

/// Why a step of the purchase (or a single [`Shop`] call) failed. Each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// No answer: building the request, connecting, sending, or reading the body failed
    /// (reqwest's error names the URL).
    #[error("step {step:?}: the HTTP request failed")]
    Http {
        /// Which step.
        step: &'static str,
        /// What reqwest saw.
        #[source]
        source: reqwest::Error,
    },
    /// An answer with another status than the step needs (the error body's code and message
    /// as order-svc and the simulator give them).
    #[error("step {step:?}: {method} {url} answered HTTP {status}{}: {message}", code_suffix(.code))]
    Refused {
        /// Which step.
        step: &'static str,
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status it answered.
        status: StatusCode,
        /// The error body's `code`, if it had one.
        code: Option<String>,
        /// The error body's `message`, else the whole body.
        message: String,
    },
    /// An answer without something the step needs.
    #[error("step {step:?}: the answer has no {what}: {body}")]
    Incomplete {
        /// Which step.
        step: &'static str,
        /// What is missing.
        what: &'static str,
        /// The answer's body.
        body: Value,
    },
    /// The order did not reach the status in time.
    #[error("step {step:?}: the order is still {last} after {waited:?}, not {wanted}")]
    Timeout {
        /// Which step.
        step: &'static str,
        /// The status waited for.
        wanted: String,
        /// The status it had at the deadline.
        last: Value,
        /// How long it was waited for.
        waited: Duration,
    },
}

impl PurchaseError {
    /// The step that failed (one of [`step`]'s names).
    pub fn step(&self) -> &'static str {
        match self {
            PurchaseError::Http { step, .. }
            | PurchaseError::Refused { step, .. }
            | PurchaseError::Incomplete { step, .. }
            | PurchaseError::Timeout { step, .. } => step,
        }
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
}

/// What happened, step by step.
#[derive(Debug, Default)]
pub struct Timeline {
    /// (elapsed since the start, step, what it showed).
    pub steps: Vec<(Duration, &'static str, String)>,
}

impl Timeline {
    /// The timeline as lines.
    pub fn render(&self) -> String {
        self.steps
            .iter()
            .map(|(t, step, what)| format!("  +{:>5} ms  {step:<26} {what}", t.as_millis()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The purchase's outcome.
#[derive(Debug)]
pub struct Receipt {
    /// The session token.
    pub token: String,
    /// The order id.
    pub order_id: String,
    /// Its out_trade_no.
    pub out_trade_no: String,
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// The steps.
    pub timeline: Timeline,
}

/// A client for the public APIs.
#[derive(Debug, Clone)]
pub struct Shop {
    http: Client,
    /// order-svc's base URL.
    pub order: String,
    /// The simulator's base URL.
    pub sim: String,
}

/// How long one call of the public APIs may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client for the public APIs: [`REQUEST_TIMEOUT`], the system's roots and `roots`
/// (a test gateway's CA, say).
pub fn client(roots: Vec<reqwest::Certificate>) -> reqwest::Result<Client> {
    roots
        .into_iter()
        .fold(Client::builder().timeout(REQUEST_TIMEOUT), |b, root| {
            b.add_root_certificate(root)
        })
        .build()
}

impl Shop {
    /// Against these URLs.
    pub fn new(order: String, sim: String) -> Self {
        Shop::with_client(client(Vec::new()).unwrap_or_default(), order, sim)
    }

    /// Against these URLs with this client (one that trusts a test gateway's CA, say).
    pub fn with_client(http: Client, order: String, sim: String) -> Self {
        Shop { http, order, sim }
    }

    /// A request to `url`, with the session token when there is one.
    fn request(&self, method: Method, url: String, token: Option<&str>) -> RequestBuilder {
        let request = self.http.request(method, url);
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// Sends `request` as part of `step`; if it answers `expected`, its JSON body (`null` when
    /// it has none).
    async fn expect(
        &self,
        step: &'static str,
        request: RequestBuilder,
        expected: StatusCode,
    ) -> Result<Value, PurchaseError> {
        let no_answer = |source| PurchaseError::Http { step, source };
        let request = request.build().map_err(no_answer)?;
        let (method, url) = (request.method().clone(), request.url().to_string());
        let response = self.http.execute(request).await.map_err(no_answer)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(no_answer)?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if status != expected {
            return Err(PurchaseError::Refused {
                step,
                method,
                url,
                status,
                code: body["code"].as_str().map(str::to_owned),
                message: match body["message"].as_str() {
                    Some(message) => message.to_owned(),
                    None => String::from_utf8_lossy(&bytes).into_owned(),
                },
            });
        }
        Ok(body)
    }

    /// Logs `user` in with a fresh simulator code; the token.
    pub async fn login(&self, user: &str) -> Result<String, PurchaseError> {
        let code = format!("test-{user}.{:08x}", rand::rng().random::<u32>());
        let request = self.request(
            Method::POST,
            format!("{}/api/v1/sessions", self.order),
            None,
        );
        let body = self
            .expect(
                step::LOGIN,
                with_json(request, &json!({ "code": code })),
                StatusCode::CREATED,
            )
            .await?;
        match body["token"].as_str() {
            Some(token) => Ok(token.to_owned()),
            None => Err(PurchaseError::Incomplete {
                step: step::LOGIN,
                what: "token",
                body,
            }),
        }
    }

    /// The price list.
    pub async fn products(&self) -> Result<Value, PurchaseError> {
        let url = format!("{}/api/v1/products", self.order);
        let request = self.request(Method::GET, url, None);
        self.expect(step::PRICE_LIST, request, StatusCode::OK).await
    }

    /// Creates an order; its JSON.
    pub async fn create_order(&self, token: &str, items: Value) -> Result<Value, PurchaseError> {
        let key = format!("demo-{:016x}", rand::rng().random::<u64>());
        self.create_order_once(token, items, &key).await
    }

    /// Creates an order under `Idempotency-Key: key`: sent again with the same key (after an
    /// answer that was lost, say), it answers the same order.
    pub async fn create_order_once(
        &self,
        token: &str,
        items: Value,
        key: &str,
    ) -> Result<Value, PurchaseError> {
        let url = format!("{}/api/v1/orders", self.order);
        let request = self
            .request(Method::POST, url, Some(token))
            .header("Idempotency-Key", key);
        let request = with_json(request, &json!({ "items": items }));
        self.expect(step::CREATE_ORDER, request, StatusCode::CREATED)
            .await
    }

    /// The payment object of an order.
    pub async fn payment(&self, token: &str, id: &str) -> Result<Value, PurchaseError> {
        let url = format!("{}/api/v1/orders/{id}/payment", self.order);
        let request = self.request(Method::POST, url, Some(token));
        self.expect(step::PREPAY, request, StatusCode::OK).await
    }

    /// The user pays in WeChat (the simulator's control API).
    pub async fn user_pays(&self, out_trade_no: &str) -> Result<Value, PurchaseError> {
        let url = format!("{}/sim/v1/orders/{out_trade_no}/pay", self.sim);
        let request = self.request(Method::POST, url, None);
        self.expect(step::USER_PAYS, request, StatusCode::OK).await
    }

    /// The order as the Mini Program sees it.
    pub async fn order(&self, token: &str, id: &str) -> Result<Value, PurchaseError> {
        self.order_as(step::READ_ORDER, token, id).await
    }

    /// The order, read as part of `step`.
    async fn order_as(
        &self,
        step: &'static str,
        token: &str,
        id: &str,
    ) -> Result<Value, PurchaseError> {
        let url = format!("{}/api/v1/orders/{id}", self.order);
        let request = self.request(Method::GET, url, Some(token));
        self.expect(step, request, StatusCode::OK).await
    }

    /// Polls until the order's status is `status` (at most `within`).
    pub async fn wait_status(
        &self,
        token: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Result<Value, PurchaseError> {
        self.wait_status_as(step::WAIT_STATUS, token, id, status, within)
            .await
    }

    async fn wait_status_as(
        &self,
        step: &'static str,
        token: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Result<Value, PurchaseError> {
        let deadline = Instant::now() + within;
        loop {
            let order = self.order_as(step, token, id).await?;
            if order["status"] == status {
                return Ok(order);
            }
            if Instant::now() > deadline {
                return Err(PurchaseError::Timeout {
                    step,
                    wanted: status.to_owned(),
                    last: order["status"].clone(),
                    waited: within,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulator's view of an order.
    pub async fn at_wechat(&self, out_trade_no: &str) -> Result<Value, PurchaseError> {
        let url = format!("{}/sim/v1/orders/{out_trade_no}", self.sim);
        let request = self.request(Method::GET, url, None);
        self.expect(step::AT_WECHAT, request, StatusCode::OK).await
    }

    /// Whether the simulator answers its health endpoint.
    pub async fn sim_health(&self) -> Result<(), PurchaseError> {
        let url = format!("{}/sim/v1/health", self.sim);
        let request = self.request(Method::GET, url, None);
        self.expect(step::SIM_HEALTH, request, StatusCode::OK)
            .await
            .map(|_| ())
    }

    /// Sets the simulator's faults.
    pub async fn faults(&self, faults: Value) -> Result<(), PurchaseError> {
        let url = format!("{}/sim/v1/faults", self.sim);
        let request = with_json(self.request(Method::PUT, url, None), &faults);
        self.expect(step::FAULTS, request, StatusCode::OK)
            .await
            .map(|_| ())
    }

    /// The whole purchase for `user`, with its timeline. `narrate` hears each step as it ends.
    pub async fn purchase(
        &self,
        user: &str,
        narrate: &(dyn Fn(&str, &str) + Sync),
    ) -> Result<Receipt, PurchaseError> {
        let started = Instant::now();
        let mut timeline = Timeline::default();
        let mut note = |step: &'static str, what: String| {
            narrate(step, &what);
            timeline.steps.push((started.elapsed(), step, what));
        };

        let token = self.login(user).await?;
        note(
            step::LOGIN,
            format!("wx.login code for {user:?} exchanged; session token issued"),
        );
        let products = self.products().await?;
        let first = products["products"][0].clone();
        let Some(sku) = first["sku"].as_str().map(str::to_owned) else {
            return Err(PurchaseError::Incomplete {
                step: step::PRICE_LIST,
                what: "products",
                body: products,
            });
        };
        note(
            step::PRICE_LIST,
            format!(
                "{} products; buying 2 x {sku} at {} fen",
                products["products"].as_array().map_or(0, Vec::len),
                first["price_fen"]
            ),
        );
        let order = self
            .create_order(&token, json!([{ "sku": sku, "quantity": 2 }]))
            .await?;
        let id = order["id"].as_str().unwrap_or_default().to_owned();
        let out_trade_no = order["out_trade_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        note(
            step::CREATE_ORDER,
            format!("{out_trade_no}: {} fen, PENDING", order["amount_fen"]),
        );
        let payment = self.payment(&token, &id).await?;
        note(
            step::PREPAY,
            format!(
                "wx.requestPayment object: {} signType={}",
                payment["package"].as_str().unwrap_or(""),
                payment["signType"].as_str().unwrap_or("")
            ),
        );
        self.user_pays(&out_trade_no).await?;
        note(
            step::USER_PAYS,
            "WeChat takes the money and notifies notify-svc".into(),
        );
        let paid = self
            .wait_status_as(step::PAID, &token, &id, "PAID", Duration::from_secs(30))
            .await?;
        let transaction_id = paid["transaction_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        note(step::PAID, format!("transaction_id {transaction_id}"));
        Ok(Receipt {
            token,
            order_id: id,
            out_trade_no,
            transaction_id,
            timeline,
        })
    }
}

/// `request` with `body` as its JSON body.
fn with_json(request: RequestBuilder, body: &Value) -> RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use std::error::Error as _;

    use service_runtime::telemetry::error_chain;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that gives every request the same answer; its base URL.
    async fn answering(status: &'static str, body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    read_request(&mut conn).await;
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        base
    }

    /// Reads one request (head and `content-length` body), so the answer is not a reset.
    async fn read_request(conn: &mut tokio::net::TcpStream) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = conn.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    fn shop(base: &str) -> Shop {
        Shop::new(base.to_owned(), base.to_owned())
    }

    #[tokio::test]
    async fn no_answer_names_the_step_and_keeps_reqwests_error() {
        let error = shop(&format!("http://{}", test_support::dead_addr()))
            .login("ana")
            .await
            .unwrap_err();
        assert!(matches!(error, PurchaseError::Http { .. }), "{error:?}");
        assert_eq!(error.step(), step::LOGIN);
        assert!(error.source().unwrap().is::<reqwest::Error>(), "{error:?}");
        let text = error_chain(&error);
        assert!(text.starts_with("step \"login\": "), "{text}");
        assert!(text.contains("/api/v1/sessions"), "names the URL: {text}");
    }

    #[tokio::test]
    async fn a_refusal_names_the_step_the_status_and_the_answers_code() {
        let base = answering(
            "503 Service Unavailable",
            r#"{"code":"payment_unavailable","message":"the payment service is unavailable"}"#,
        )
        .await;
        let error = shop(&base).payment("token", "some-id").await.unwrap_err();
        let PurchaseError::Refused {
            step,
            ref method,
            ref url,
            status,
            ref code,
            ref message,
        } = error
        else {
            panic!("{error:?}");
        };
        assert_eq!(step, step::PREPAY);
        assert_eq!(method, Method::POST);
        assert_eq!(url, &format!("{base}/api/v1/orders/some-id/payment"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code.as_deref(), Some("payment_unavailable"));
        assert_eq!(message, "the payment service is unavailable");
        assert_eq!(
            error_chain(&error),
            format!(
                "step \"prepay\": POST {base}/api/v1/orders/some-id/payment answered HTTP 503 \
                 Service Unavailable payment_unavailable: the payment service is unavailable"
            )
        );
    }

    #[tokio::test]
    async fn a_refusal_without_an_error_body_keeps_the_body() {
        let base = answering("404 Not Found", "no such route").await;
        let error = shop(&base).user_pays("1234").await.unwrap_err();
        assert_eq!(error.step(), step::USER_PAYS);
        assert!(
            matches!(&error, PurchaseError::Refused { code: None, message, .. } if message == "no such route"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_login_answer_without_a_token_is_incomplete() {
        let base = answering("201 Created", r#"{"openid":"o1"}"#).await;
        let error = shop(&base).login("ana").await.unwrap_err();
        assert!(
            matches!(
                &error,
                PurchaseError::Incomplete {
                    step: step::LOGIN,
                    what: "token",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_order_that_keeps_its_status_times_out_naming_both_statuses() {
        let base = answering("200 OK", r#"{"id":"o1","status":"PENDING"}"#).await;
        let error = shop(&base)
            .wait_status("token", "o1", "CLOSED", Duration::ZERO)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, PurchaseError::Timeout { step: step::WAIT_STATUS, wanted, last, waited }
                if wanted == "CLOSED" && last == "PENDING" && waited.is_zero()),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains("PENDING") && text.contains("CLOSED"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_purchase_fails_at_the_first_step_that_fails() {
        let base = answering(
            "401 Unauthorized",
            r#"{"code":"login_failed","message":"the code was refused"}"#,
        )
        .await;
        let heard = std::sync::Mutex::new(Vec::new());
        let error = shop(&base)
            .purchase("ana", &|step, _| {
                heard.lock().unwrap().push(step.to_owned())
            })
            .await
            .unwrap_err();
        assert_eq!(error.step(), step::LOGIN);
        assert!(heard.lock().unwrap().is_empty(), "no step completed");
    }
}
