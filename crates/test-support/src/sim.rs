//! Reading the WeChat Pay simulator's view of an order (`GET /sim/v1/orders/{out_trade_no}`,
//! or `serde_json::to_value` of the in-process `OrderView`). The simulator records each copy
//! of a notification when that copy's answer arrives, so the record grows after the order is
//! already paid: tests wait for it to be complete before reading it.

use std::collections::BTreeMap;

use serde_json::Value;

/// The notification attempts of an order, once complete: every attempt has all its `copies`
/// recorded (copy 1 to `copies`, once each) and the last attempt was acknowledged (WeChat
/// stops then). Otherwise what is still missing, for [`crate::wait_until`].
pub fn settled_attempts(view: &Value, copies: u64) -> Result<Vec<Value>, String> {
    let attempts = view["notifications"]["attempts"]
        .as_array()
        .ok_or_else(|| format!("no notification record in {view}"))?;
    let mut by_attempt: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for a in attempts {
        let (attempt, copy) = (a["attempt"].as_u64(), a["copy"].as_u64());
        let (Some(attempt), Some(copy)) = (attempt, copy) else {
            return Err(format!("an attempt without its number or copy: {a}"));
        };
        by_attempt.entry(attempt).or_default().push(copy);
    }
    let Some((&last, _)) = by_attempt.last_key_value() else {
        return Err("no attempt recorded yet".into());
    };
    for (attempt, mut seen) in by_attempt {
        seen.sort_unstable();
        if seen != (1..=copies).collect::<Vec<_>>() {
            return Err(format!(
                "attempt {attempt} has copies {seen:?} of {copies}: {attempts:?}"
            ));
        }
    }
    let acked = attempts
        .iter()
        .any(|a| a["attempt"].as_u64() == Some(last) && a["outcome"] == "acked");
    if !acked {
        return Err(format!("attempt {last} was not acknowledged: {attempts:?}"));
    }
    Ok(attempts.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view(attempts: &[(u64, u64, &str)]) -> Value {
        let attempts: Vec<Value> = attempts
            .iter()
            .map(|(attempt, copy, outcome)| json!({"attempt": attempt, "copy": copy, "outcome": outcome}))
            .collect();
        json!({ "notifications": { "attempts": attempts } })
    }

    #[test]
    fn complete_when_every_copy_is_in_and_the_last_attempt_was_acked() {
        let v = view(&[
            (1, 2, "failure_ack"),
            (1, 1, "failure_ack"),
            (2, 1, "failure_ack"),
            (2, 2, "acked"),
        ]);
        assert_eq!(settled_attempts(&v, 2).unwrap().len(), 4);
    }

    #[test]
    fn incomplete_while_a_copy_is_missing() {
        // The race once seen: only the fifth copy recorded, though the order was paid.
        let v = view(&[(1, 5, "acked")]);
        let missing = settled_attempts(&v, 5).unwrap_err();
        assert!(
            missing.contains("attempt 1 has copies [5] of 5"),
            "{missing}"
        );
    }

    #[test]
    fn incomplete_before_any_attempt_or_an_ack() {
        assert!(settled_attempts(&view(&[]), 1).is_err());
        assert!(settled_attempts(&view(&[(1, 1, "timeout")]), 1).is_err());
    }
}
