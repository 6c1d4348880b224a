//! Drives a running stack with concurrent buyers for a while and prints the completed
//! purchases per second, for sizing pods: run it against `minipay up` (optionally
//! `--gateway`) while sampling the services' CPU and RSS.
//!
//! ```text
//! cargo run --release -p minipay --example sizing -- buy|poll <api base URL> <simulator URL> <buyers> <seconds> [ca.pem]
//! ```
//!
//! `buy`: each buyer logs in once, then orders, prepays, pays and polls until PAID, again and
//! again. `poll`: each buyer logs in, orders once, then reads its order's status in a loop
//! (the Mini Program's status poll; neither logins nor order creations, which the gateway
//! rate-limits per client).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use minipay::purchase::Shop;

/// Order, prepay, the user pays, polled until PAID.
async fn buy(shop: &Shop, token: &str) -> Result<(), minipay::purchase::PurchaseError> {
    let order = shop
        .create_order(
            token,
            serde_json::json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]),
        )
        .await?;
    let id = order["id"].as_str().unwrap_or_default();
    let number = order["out_trade_no"].as_str().unwrap_or_default();
    shop.payment(token, id).await?;
    shop.user_pays(number).await?;
    shop.wait_status(token, id, "PAID", Duration::from_secs(30))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 || !matches!(args[1].as_str(), "buy" | "poll") {
        eprintln!(
            "usage: sizing buy|poll <api base URL> <simulator URL> <buyers> <seconds> [ca.pem]"
        );
        std::process::exit(2);
    }
    let poll = args[1] == "poll";
    let (api, sim) = (args[2].clone(), args[3].clone());
    let buyers: usize = args[4].parse().unwrap_or(8);
    let seconds: u64 = args[5].parse().unwrap_or(20);
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = args.get(6) {
        let pem = std::fs::read(ca).unwrap_or_default();
        match reqwest::Certificate::from_pem(&pem) {
            Ok(cert) => client = client.add_root_certificate(cert),
            Err(e) => {
                eprintln!("{ca}: {e}");
                std::process::exit(2);
            }
        }
    }
    let client = client.build().unwrap_or_default();
    let shop = Shop::with_client(client, api, sim);
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..buyers)
        .map(|b| {
            let (shop, done, failed) = (shop.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                // One login per buyer (logins are rate-limited per client address).
                let token = match shop.login(&format!("sizing{b}")).await {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("login: {e}");
                        return;
                    }
                };
                let order = if poll {
                    match shop
                        .create_order(
                            &token,
                            serde_json::json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]),
                        )
                        .await
                    {
                        Ok(o) => o["id"].as_str().unwrap_or_default().to_owned(),
                        Err(e) => {
                            eprintln!("order: {e}");
                            return;
                        }
                    }
                } else {
                    String::new()
                };
                while Instant::now() < until {
                    let step = if poll {
                        shop.order(&token, &order).await.map(|_| ())
                    } else {
                        buy(&shop, &token).await
                    };
                    match step {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("{e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = done as f64 / elapsed;
    println!(
        "{done} {} in {elapsed:.1} s ({rate:.1}/s), {} failed, {buyers} buyers",
        if poll { "status polls" } else { "purchases" },
        failed.load(Ordering::Relaxed)
    );
}
