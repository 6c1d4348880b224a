//! `minipay reconcile --date YYYY-MM-DD`: runs a day's reconciliation through the admin API
//! (`POST /admin/v1/reconciliations`) and prints the report as a table. Exits 0 when the
//! bill and the books agree (or every difference was healed), 1 when differences wait for an
//! operator or the run failed, 2 when it could not ask.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use service_runtime::telemetry::error_chain;

/// `minipay reconcile`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Beijing-time day, YYYY-MM-DD
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = day)]
    pub date: String,
    /// order-svc's base URL (or the API gateway's, https with --ca)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// The file holding the operator's token (`minipay up` writes .minipay/admin-token);
    /// MINIPAY_ADMIN_TOKEN overrides it
    #[arg(long, value_name = "FILE", default_value = ".minipay/admin-token")]
    pub token_file: PathBuf,
    /// The CA certificate (PEM) to trust for an https --api
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Print the report as JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

fn day(value: &str) -> Result<String, String> {
    time::Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map(|d| d.to_string())
    .map_err(|_| "a day, YYYY-MM-DD (Beijing time)".to_owned())
}

pub(super) async fn run(args: Args) -> ExitCode {
    let token = match std::env::var("MINIPAY_ADMIN_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => match std::fs::read_to_string(&args.token_file) {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                eprintln!(
                    "minipay reconcile: cannot read the operator's token from {}: {e} (set MINIPAY_ADMIN_TOKEN or --token-file)",
                    args.token_file.display()
                );
                return ExitCode::from(2);
            }
        },
    };
    let http = match crate::load::client(args.ca.as_deref()) {
        Ok(http) => http,
        Err(e) => {
            eprintln!("minipay reconcile: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let url = format!(
        "{}/admin/v1/reconciliations",
        args.api.trim_end_matches('/')
    );
    let answer = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({ "date": args.date }).to_string())
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .await;
    let (status, body) = match answer {
        Ok(r) => {
            let status = r.status();
            let bytes = r.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(e) => {
            eprintln!(
                "minipay reconcile: {url} did not answer: {}",
                error_chain(&e)
            );
            return ExitCode::from(2);
        }
    };
    if !status.is_success() {
        eprintln!(
            "minipay reconcile: {url} answered {status}: {} {}",
            body["code"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or("")
        );
        return ExitCode::from(2);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        println!("{}", render(&body));
    }
    let unhealed = body["differences"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|d| d["healed"] != true).count());
    if body["status"] == "FAILED" || unhealed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The report as text: the status, both sides' totals, one row per difference.
pub fn render(report: &Value) -> String {
    let mut out = vec![format!(
        "Reconciliation of {}: {} (run {})",
        report["date"].as_str().unwrap_or("?"),
        report["status"].as_str().unwrap_or("?"),
        report["attempts"]
    )];
    if let Some(error) = report["error"].as_str() {
        out.push(format!("  failed: {error}"));
    }
    let (bill, books) = (&report["totals"]["bill"], &report["totals"]["books"]);
    if bill.is_null() {
        out.push("  bill:  none (no transactions that day at WeChat)".into());
    } else {
        out.push(format!(
            "  bill:  {} lines ({} payments, {} refunds); settled {} fen, refunded {} fen, fees {} (0.00001 yuan)",
            bill["lines"], bill["payments"], bill["refunds"], bill["settlement_fen"], bill["refund_fen"], bill["fee_e5"]
        ));
    }
    if !books.is_null() {
        out.push(format!(
            "  books: {} paid orders, {} fen; {} refunds, {} fen refunded",
            books["paid_orders"], books["paid_fen"], books["refunds"], books["refunded_fen"]
        ));
    }
    let differences = report["differences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if differences.is_empty() {
        out.push("  no differences".into());
    } else {
        out.push(String::new());
        out.push("| kind | out_trade_no | out_refund_no | healed | detail |".into());
        out.push("|---|---|---|---|---|".into());
        for d in &differences {
            out.push(format!(
                "| {} | {} | {} | {} | {} |",
                d["kind"].as_str().unwrap_or(""),
                d["out_trade_no"].as_str().unwrap_or(""),
                d["out_refund_no"].as_str().unwrap_or(""),
                if d["healed"] == true { "yes" } else { "no" },
                d["detail"].as_str().unwrap_or("")
            ));
        }
    }
    out.join("\n")
}
