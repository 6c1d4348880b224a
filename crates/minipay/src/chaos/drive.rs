//! The buyers: purchases through the public API of both order-svc replicas, paced over the
//! fault, each step retried as a demanding client retries (another replica, backing off,
//! the same `Idempotency-Key` for the order), and about one in seven orders left unpaid.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio::time::Instant;

use crate::purchase::{PurchaseError, Shop};

/// Every step gives up after retrying this long.
const STEP_DEADLINE: Duration = Duration::from_secs(90);
/// One order in this many is left unpaid.
const UNPAID_EVERY: usize = 7;

/// What one buyer did.
#[derive(Debug, Clone, Default)]
pub struct Purchase {
    /// Which purchase.
    pub index: usize,
    /// The buyer's session token.
    pub token: String,
    /// The order's id, once created.
    pub id: Option<String>,
    /// Its `out_trade_no`, once created.
    pub number: Option<String>,
    /// Whether the buyer paid in WeChat.
    pub paid: bool,
    /// The step and answer the buyer gave up on, if it did.
    pub gave_up: Option<String>,
    /// Calls the buyer made again after no answer or a "try again" answer.
    pub retries: usize,
}

/// How many purchases, spread over how long.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Purchases.
    pub purchases: usize,
    /// They start evenly over this long.
    pub spread: Duration,
}

/// Logged-in buyers and the replicas they buy through.
#[derive(Debug, Clone)]
pub struct Driver {
    shops: Arc<Vec<Shop>>,
    tokens: Arc<Vec<String>>,
}

/// Whether a client should try again: no answer, or an answer that says "later".
fn retryable(e: &PurchaseError) -> bool {
    match e {
        PurchaseError::Http { .. } => true,
        PurchaseError::Refused { status, .. } => {
            status.is_server_error()
                || *status == StatusCode::TOO_MANY_REQUESTS
                || *status == StatusCode::REQUEST_TIMEOUT
        }
        PurchaseError::Incomplete { .. } | PurchaseError::Timeout { .. } => false,
    }
}

/// Calls `f` on the replicas in turn, starting with `first`, until it succeeds, fails for
/// good, or [`STEP_DEADLINE`] passes.
async fn persist<T>(
    shops: &[Shop],
    first: usize,
    retries: &mut usize,
    f: impl AsyncFn(&Shop) -> Result<T, PurchaseError>,
) -> Result<T, PurchaseError> {
    let deadline = Instant::now() + STEP_DEADLINE;
    let mut attempt = 0usize;
    loop {
        let shop = &shops[(first + attempt) % shops.len()];
        match f(shop).await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) && Instant::now() < deadline => {
                attempt += 1;
                *retries += 1;
                let backoff = 100u64 << attempt.min(4);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn describe(e: &PurchaseError) -> String {
    match e {
        PurchaseError::Refused { status, code, .. } => format!(
            "{} {}{}",
            e.step(),
            status.as_u16(),
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
        ),
        _ => format!("{} (no answer)", e.step()),
    }
}

impl Driver {
    /// Logs `buyers` buyers in, spread over the replicas.
    pub async fn login(shops: &[Shop], buyers: usize) -> Result<Driver, PurchaseError> {
        let mut tokens = Vec::new();
        for b in 0..buyers {
            let user = format!("chaos{b}");
            let mut retries = 0;
            let token = persist(shops, b, &mut retries, async |shop| shop.login(&user).await);
            tokens.push(token.await?);
        }
        Ok(Driver {
            shops: Arc::new(shops.to_vec()),
            tokens: Arc::new(tokens),
        })
    }

    /// Runs the plan; what every buyer did, in order.
    pub async fn run(self, plan: Plan) -> Vec<Purchase> {
        let started = Instant::now();
        let gap = plan
            .spread
            .checked_div(u32::try_from(plan.purchases.max(1)).unwrap_or(u32::MAX))
            .unwrap_or_default();
        let mut all: Vec<Purchase> = futures_util::stream::iter(0..plan.purchases)
            .map(|index| {
                let driver = self.clone();
                let at = started + gap * u32::try_from(index).unwrap_or(u32::MAX);
                async move {
                    tokio::time::sleep_until(at).await;
                    driver.purchase(index).await
                }
            })
            .buffer_unordered(plan.purchases.max(1))
            .collect()
            .await;
        all.sort_by_key(|p| p.index);
        all
    }

    async fn purchase(&self, index: usize) -> Purchase {
        let mut p = Purchase {
            index,
            token: self.tokens[index % self.tokens.len()].clone(),
            ..Purchase::default()
        };
        if let Err(e) = self.steps(&mut p).await {
            p.gave_up = Some(describe(&e));
        }
        p
    }

    async fn steps(&self, p: &mut Purchase) -> Result<(), PurchaseError> {
        let shops = self.shops.as_slice();
        let replica = p.index % shops.len();
        let key = format!("chaos-{}-{:08x}", p.index, rand::random::<u32>());
        let items = json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]);
        let order = persist(shops, replica, &mut p.retries, async |shop| {
            shop.create_order_once(&p.token, items.clone(), &key).await
        })
        .await?;
        let field = |name: &str| order[name].as_str().map(str::to_owned);
        let (Some(id), Some(number)) = (field("id"), field("out_trade_no")) else {
            return Err(PurchaseError::Incomplete {
                step: crate::purchase::step::CREATE_ORDER,
                what: "id and out_trade_no",
                body: order,
            });
        };
        p.id = Some(id.clone());
        p.number = Some(number.clone());
        // Prepay through the other replica: a session from one is good at the other.
        let token = p.token.clone();
        persist(shops, replica + 1, &mut p.retries, async |shop| {
            shop.payment(&token, &id).await
        })
        .await?;
        if p.index % UNPAID_EVERY == UNPAID_EVERY - 1 {
            return Ok(());
        }
        persist(shops, 0, &mut p.retries, async |shop| {
            shop.user_pays(&number).await
        })
        .await?;
        p.paid = true;
        Ok(())
    }
}
