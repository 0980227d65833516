//! A host's `price_per_hour` (Docker engines, SSH machines): over the
//! pool's, recorded with each worker it runs (docs/cost.md).

use super::problem::{Path, Problems};

/// A price is a number of at least 0.
pub fn check_price(path: &Path, price: Option<f64>, out: &mut Problems) {
    if let Some(p) = price {
        if !p.is_finite() || p < 0.0 {
            out.push(path, format!("must be a number at least 0 (got {p})"));
        }
    }
}
