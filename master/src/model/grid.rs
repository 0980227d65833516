//! The grid: builders × their recent submits, each submit split into its
//! matrix cells, as `GET /api/v1/grid` serves it and `/grid` draws it. Built
//! in memory from the summaries one store query returns.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{BuildId, BuildState, Millis};

/// How many submits per builder the grid shows unless asked otherwise.
pub const GRID_DEFAULT_SUBMITS: u32 = 20;
/// At most this many submits per builder.
pub const GRID_MAX_SUBMITS: u32 = 200;

/// A build without its steps and attempts: what the grid needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSummary {
    pub id: BuildId,
    pub submit_id: String,
    pub builder: String,
    pub cell: BTreeMap<String, String>,
    pub state: BuildState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
}

/// `GET /api/v1/grid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// The most submits any row holds.
    pub submits_per_builder: u32,
    /// One per builder, by name.
    pub rows: Vec<GridRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridRow {
    pub builder: String,
    /// Newest first.
    pub submits: Vec<GridSubmit>,
}

/// One `burst submit`: one build per matrix cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridSubmit {
    pub submit_id: String,
    pub created_at: Millis,
    /// The submit as a whole: see [`overall`].
    pub state: BuildState,
    /// In matrix order (the order the submit expanded them).
    pub cells: Vec<GridCell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridCell {
    pub build: BuildId,
    pub cell: BTreeMap<String, String>,
    pub state: BuildState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Grid {
    /// Groups `summaries` (any order) by builder and submit. Every name in
    /// `builders` gets a row, with or without submits, so a builder that
    /// never ran still shows; builders only the history knows get one too.
    /// Each row keeps its `per_builder` newest submits.
    pub fn build(
        builders: impl IntoIterator<Item = String>,
        mut summaries: Vec<BuildSummary>,
        per_builder: u32,
    ) -> Grid {
        let mut rows: BTreeMap<String, Vec<GridSubmit>> =
            builders.into_iter().map(|b| (b, Vec::new())).collect();
        // Oldest first, so cells land in expansion order and submits in
        // submit order; rows are reversed at the end.
        summaries.sort_by_key(|s| s.id);
        let mut at: HashMap<String, usize> = HashMap::new();
        for s in summaries {
            let submits = rows.entry(s.builder).or_default();
            let cell = GridCell {
                build: s.id,
                cell: s.cell,
                state: s.state,
                reason: s.reason,
            };
            // Keyed by submit id, not adjacency: correct even if two
            // submits' ids interleaved.
            match at.get(&s.submit_id) {
                Some(&i) if submits.get(i).is_some_and(|g| g.submit_id == s.submit_id) => {
                    submits[i].cells.push(cell);
                }
                _ => {
                    at.insert(s.submit_id.clone(), submits.len());
                    submits.push(GridSubmit {
                        submit_id: s.submit_id,
                        created_at: s.created_at,
                        state: s.state,
                        cells: vec![cell],
                    });
                }
            }
        }
        let limit = usize::try_from(per_builder).unwrap_or(usize::MAX);
        let rows = rows
            .into_iter()
            .map(|(builder, mut submits)| {
                submits.reverse();
                submits.truncate(limit);
                for s in &mut submits {
                    s.state = overall(s.cells.iter().map(|c| c.state));
                }
                GridRow { builder, submits }
            })
            .collect::<Vec<_>>();
        let widest = rows.iter().map(|r| r.submits.len()).max().unwrap_or(0);
        Grid {
            submits_per_builder: u32::try_from(widest).unwrap_or(u32::MAX),
            rows,
        }
    }
}

/// A submit's state from its cells': running while any runs, else queued
/// while any waits, else its worst result (lost, timed out, failed,
/// cancelled), else succeeded.
pub fn overall(states: impl IntoIterator<Item = BuildState>) -> BuildState {
    states
        .into_iter()
        .max_by_key(|s| match s {
            BuildState::Succeeded => 0,
            BuildState::Cancelled => 1,
            BuildState::Failed => 2,
            BuildState::TimedOut => 3,
            BuildState::WorkerLost => 4,
            BuildState::Queued => 5,
            BuildState::Running => 6,
        })
        .unwrap_or(BuildState::Queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(
        id: BuildId,
        submit: &str,
        builder: &str,
        os: &str,
        state: BuildState,
    ) -> BuildSummary {
        BuildSummary {
            id,
            submit_id: submit.to_owned(),
            builder: builder.to_owned(),
            cell: [("os".to_owned(), os.to_owned())].into(),
            state,
            reason: None,
            created_at: id,
            finished_at: None,
        }
    }

    #[test]
    fn groups_by_builder_and_submit_newest_first() {
        use BuildState::*;
        let summaries = vec![
            summary(4, "s3", "b", "linux", Running),
            summary(1, "s1", "a", "linux", Succeeded),
            summary(2, "s1", "a", "mac", Failed),
            summary(3, "s2", "a", "linux", Queued),
        ];
        let grid = Grid::build(["c".to_owned(), "a".to_owned()], summaries, 10);
        let names: Vec<&str> = grid.rows.iter().map(|r| r.builder.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a = &grid.rows[0];
        let submits: Vec<&str> = a.submits.iter().map(|s| s.submit_id.as_str()).collect();
        assert_eq!(submits, ["s2", "s1"]);
        let cells: Vec<BuildId> = a.submits[1].cells.iter().map(|c| c.build).collect();
        assert_eq!(cells, [1, 2]);
        assert_eq!(a.submits[1].state, Failed);
        assert_eq!(a.submits[0].state, Queued);
        assert!(grid.rows[2].submits.is_empty());
        assert_eq!(grid.submits_per_builder, 2);
    }

    #[test]
    fn keeps_the_newest_submits_per_row() {
        let summaries = (1..=5)
            .map(|i| summary(i, &format!("s{i}"), "a", "linux", BuildState::Succeeded))
            .collect();
        let grid = Grid::build([], summaries, 2);
        let submits: Vec<&str> = grid.rows[0]
            .submits
            .iter()
            .map(|s| s.submit_id.as_str())
            .collect();
        assert_eq!(submits, ["s5", "s4"]);
    }

    #[test]
    fn overall_prefers_activity_then_the_worst_result() {
        use BuildState::*;
        assert_eq!(overall([Succeeded, Running, Failed]), Running);
        assert_eq!(overall([Succeeded, Queued, Failed]), Queued);
        assert_eq!(overall([Succeeded, Cancelled, Failed]), Failed);
        assert_eq!(overall([Succeeded, Succeeded]), Succeeded);
    }
}
