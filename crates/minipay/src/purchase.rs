//! One real purchase through the public HTTP API and the simulator's control API: log in,
//! read the price list, create an order, get the payment object, the user pays in WeChat
//! (the simulator), and the notification makes the order PAID.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Client, Method};
use serde_json::{Value, json};

/// A step that failed.
#[derive(Debug, thiserror::Error)]
#[error("step {step:?} failed: {detail}")]
pub struct StepError {
    /// Which step.
    pub step: &'static str,
    /// What happened.
    pub detail: String,
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

impl Shop {
    /// Against these URLs.
    pub fn new(order: String, sim: String) -> Self {
        Shop {
            http: Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            order,
            sim,
        }
    }

    /// A JSON call; `(status, body)`.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), String> {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// A call that must answer `expected`; its body.
    async fn expect(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
        expected: u16,
    ) -> Result<Value, String> {
        let (status, body) = self.call(method, url, token, body, headers).await?;
        if status != expected {
            return Err(format!("HTTP {status}: {body}"));
        }
        Ok(body)
    }

    /// Logs `user` in with a fresh simulator code; the token.
    pub async fn login(&self, user: &str) -> Result<String, String> {
        let code = format!("test-{user}.{:08x}", rand::rng().random::<u32>());
        let body = self
            .expect(
                Method::POST,
                &format!("{}/api/v1/sessions", self.order),
                None,
                Some(json!({ "code": code })),
                &[],
                201,
            )
            .await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no token in {body}"))
    }

    /// Creates an order; its JSON.
    pub async fn create_order(&self, token: &str, items: Value) -> Result<Value, String> {
        let key = format!("demo-{:016x}", rand::rng().random::<u64>());
        let url = format!("{}/api/v1/orders", self.order);
        self.expect(
            Method::POST,
            &url,
            Some(token),
            Some(json!({ "items": items })),
            &[("Idempotency-Key", &key)],
            201,
        )
        .await
    }

    /// The payment object of an order.
    pub async fn payment(&self, token: &str, id: &str) -> Result<Value, String> {
        self.expect(
            Method::POST,
            &format!("{}/api/v1/orders/{id}/payment", self.order),
            Some(token),
            None,
            &[],
            200,
        )
        .await
    }

    /// The user pays in WeChat (the simulator's control API).
    pub async fn user_pays(&self, out_trade_no: &str) -> Result<Value, String> {
        self.expect(
            Method::POST,
            &format!("{}/sim/v1/orders/{out_trade_no}/pay", self.sim),
            None,
            None,
            &[],
            200,
        )
        .await
    }

    /// The order as the Mini Program sees it.
    pub async fn order(&self, token: &str, id: &str) -> Result<Value, String> {
        self.expect(
            Method::GET,
            &format!("{}/api/v1/orders/{id}", self.order),
            Some(token),
            None,
            &[],
            200,
        )
        .await
    }

    /// Polls until the order's status is `status` (at most `within`).
    pub async fn wait_status(
        &self,
        token: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + within;
        loop {
            let order = self.order(token, id).await?;
            if order["status"] == status {
                return Ok(order);
            }
            if Instant::now() > deadline {
                return Err(format!("still {} after {within:?}", order["status"]));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulator's view of an order.
    pub async fn at_wechat(&self, out_trade_no: &str) -> Result<Value, String> {
        self.expect(
            Method::GET,
            &format!("{}/sim/v1/orders/{out_trade_no}", self.sim),
            None,
            None,
            &[],
            200,
        )
        .await
    }

    /// Sets the simulator's faults.
    pub async fn faults(&self, faults: Value) -> Result<(), String> {
        self.expect(
            Method::PUT,
            &format!("{}/sim/v1/faults", self.sim),
            None,
            Some(faults),
            &[],
            200,
        )
        .await
        .map(|_| ())
    }

    /// The whole purchase for `user`, with its timeline. `narrate` hears each step as it ends.
    pub async fn purchase(
        &self,
        user: &str,
        narrate: &(dyn Fn(&str, &str) + Sync),
    ) -> Result<Receipt, StepError> {
        let started = Instant::now();
        let mut timeline = Timeline::default();
        let mut note = |step: &'static str, what: String| {
            narrate(step, &what);
            timeline.steps.push((started.elapsed(), step, what));
        };
        let fail = |step: &'static str| move |detail: String| StepError { step, detail };

        let token = self.login(user).await.map_err(fail("login"))?;
        note(
            "login",
            format!("wx.login code for {user:?} exchanged; session token issued"),
        );
        let (_, products) = self
            .call(
                Method::GET,
                &format!("{}/api/v1/products", self.order),
                None,
                None,
                &[],
            )
            .await
            .map_err(fail("price list"))?;
        let first = products["products"][0].clone();
        let sku = first["sku"]
            .as_str()
            .ok_or_else(|| fail("price list")(format!("no products in {products}")))?
            .to_owned();
        note(
            "price list",
            format!(
                "{} products; buying 2 x {sku} at {} fen",
                products["products"].as_array().map_or(0, Vec::len),
                first["price_fen"]
            ),
        );
        let order = self
            .create_order(&token, json!([{ "sku": sku, "quantity": 2 }]))
            .await
            .map_err(fail("create order"))?;
        let id = order["id"].as_str().unwrap_or_default().to_owned();
        let out_trade_no = order["out_trade_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        note(
            "create order",
            format!("{out_trade_no}: {} fen, PENDING", order["amount_fen"]),
        );
        let payment = self.payment(&token, &id).await.map_err(fail("prepay"))?;
        note(
            "prepay",
            format!(
                "wx.requestPayment object: {} signType={}",
                payment["package"].as_str().unwrap_or(""),
                payment["signType"].as_str().unwrap_or("")
            ),
        );
        self.user_pays(&out_trade_no)
            .await
            .map_err(fail("user pays (simulator)"))?;
        note(
            "user pays (simulator)",
            "WeChat takes the money and notifies notify-svc".into(),
        );
        let paid = self
            .wait_status(&token, &id, "PAID", Duration::from_secs(30))
            .await
            .map_err(fail("notification -> PAID"))?;
        let transaction_id = paid["transaction_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        note(
            "notification -> PAID",
            format!("transaction_id {transaction_id}"),
        );
        Ok(Receipt {
            token,
            order_id: id,
            out_trade_no,
            transaction_id,
            timeline,
        })
    }
}
