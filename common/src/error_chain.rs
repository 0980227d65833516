//! Errors printed with their whole cause chain, so a log line says why
//! ("failed to save build 7: database is locked"), not just what.

use std::error::Error;
use std::fmt;

/// Displays an error and every `source()` below it, joined by ": ".
///
/// `tracing::warn!(error = %Chain(&e), "…")` at every log site.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut last = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Some errors repeat their cause in their own message; say it once.
            if !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn prints_every_cause_once() {
        let e = E(
            "failed to save build 7",
            Some(Box::new(E(
                "disk I/O error",
                Some(Box::new(E("No space left", None))),
            ))),
        );
        assert_eq!(
            Chain(&e).to_string(),
            "failed to save build 7: disk I/O error: No space left"
        );
        let repeated = E(
            "failed: disk I/O error",
            Some(Box::new(E("disk I/O error", None))),
        );
        assert_eq!(Chain(&repeated).to_string(), "failed: disk I/O error");
    }
}
