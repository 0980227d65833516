//! Matrix cells: one per combination of axis values.

use std::collections::BTreeMap;

pub(crate) type Matrix = BTreeMap<String, Vec<String>>;
pub(crate) type Cell = BTreeMap<String, String>;

/// More cells than this is almost surely a mistake, and expanding it would
/// stall the master.
pub(crate) const MAX_CELLS: usize = 1024;

/// How many cells the matrix has; `None` if the count overflows.
pub(crate) fn cell_count(matrix: &Matrix) -> Option<usize> {
    matrix
        .values()
        .try_fold(1usize, |n, values| n.checked_mul(values.len()))
}

/// The cartesian product: axes in name order, the first axis varying
/// slowest, values in the order given. No axes yields one empty cell.
/// Callers check `cell_count` against `MAX_CELLS` first.
pub(crate) fn cells(matrix: &Matrix) -> Vec<Cell> {
    let mut out = vec![Cell::new()];
    for (axis, values) in matrix {
        out = out
            .iter()
            .flat_map(|cell| {
                values.iter().map(move |value| {
                    let mut cell = cell.clone();
                    cell.insert(axis.clone(), value.clone());
                    cell
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(axes: &[(&str, &[&str])]) -> Matrix {
        axes.iter()
            .map(|(a, vs)| (a.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn no_axes_is_one_empty_cell() {
        assert_eq!(cells(&Matrix::new()), vec![Cell::new()]);
        assert_eq!(cell_count(&Matrix::new()), Some(1));
    }

    #[test]
    fn product_in_axis_then_value_order() {
        let m = matrix(&[("os", &["linux", "mac"]), ("arch", &["x86", "arm"])]);
        let got: Vec<String> = cells(&m)
            .iter()
            .map(|c| format!("{}/{}", c["arch"], c["os"]))
            .collect();
        // "arch" sorts before "os", so it varies slowest.
        assert_eq!(got, ["x86/linux", "x86/mac", "arm/linux", "arm/mac"]);
        assert_eq!(cell_count(&m), Some(4));
    }

    #[test]
    fn count_overflow_is_none() {
        let big: Vec<String> = (0..1 << 16).map(|i| i.to_string()).collect();
        let m: Matrix = (0..8).map(|i| (format!("a{i}"), big.clone())).collect();
        assert_eq!(cell_count(&m), None);
    }
}
