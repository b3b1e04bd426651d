//! What CI collectors share: the default mapping of a run by its pipeline's name, and
//! outcome words.

/// Default controls for a CI run or job named `name`: test/eval/validation/benchmark runs
/// verify the system (A.6.2.4), deploy/release runs deploy it (A.6.2.5), anything else is an
/// event log of the development process (A.6.2.8, A.6.1.3). `[[rules]]` with
/// `replace = true` override this.
pub fn default_controls(name: &str) -> Vec<&'static str> {
    let n = name.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let mut c = Vec::new();
    if has(&["test", "eval", "validat", "bench"]) {
        c.push("A.6.2.4");
    }
    if has(&["deploy", "release"]) {
        c.push("A.6.2.5");
    }
    if c.is_empty() {
        c.extend(["A.6.2.8", "A.6.1.3"]);
    }
    c
}

/// Buildbot's numeric result as a word (0 success, 1 warnings, 2 failure, …).
pub fn buildbot_result(code: Option<i64>) -> &'static str {
    match code {
        Some(0) => "success",
        Some(1) => "warnings",
        Some(2) => "failure",
        Some(3) => "skipped",
        Some(4) => "exception",
        Some(5) => "retry",
        Some(6) => "cancelled",
        Some(_) => "unknown",
        None => "running",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_choose_controls() {
        assert_eq!(default_controls("Model evaluation"), ["A.6.2.4"]);
        assert_eq!(default_controls("nightly-bench"), ["A.6.2.4"]);
        assert_eq!(default_controls("Deploy to prod"), ["A.6.2.5"]);
        assert_eq!(default_controls("test and release"), ["A.6.2.4", "A.6.2.5"]);
        assert_eq!(default_controls("lint"), ["A.6.2.8", "A.6.1.3"]);
        assert_eq!(buildbot_result(Some(2)), "failure");
        assert_eq!(buildbot_result(None), "running");
    }
}
