//! Reading a service's log output (JSON lines from `service_runtime::telemetry`): which lines
//! would page someone.

/// The lines of `output` at WARN or ERROR level, and any line that is not a JSON log line
/// (a panic message, a library printing on its own): what a clean run must not have.
pub fn alarming_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            !line.starts_with('{')
                || line.contains(r#""level":"WARN""#)
                || line.contains(r#""level":"ERROR""#)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::alarming_lines;

    #[test]
    fn warnings_errors_and_raw_text_are_alarming_info_is_not() {
        let output = concat!(
            r#"{"level":"INFO","fields":{"message":"stopped"}}"#,
            "\n",
            r#"{"level":"WARN","fields":{"message":"promise has vanished"}}"#,
            "\n",
            r#"{"level":"ERROR","fields":{"message":"Connection error"}}"#,
            "\n\nthread 'main' panicked\n",
        );
        let alarming = alarming_lines(output);
        assert_eq!(alarming.len(), 3, "{alarming:?}");
        assert!(alarming[0].contains("vanished"));
        assert!(alarming[2].contains("panicked"));
    }
}
