//! Runs every contract check against `MemoryStore` and a fresh `SqliteStore`.

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use crate::store::MemoryStore;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&MemoryStore::new()).await;
                }
            )*
        }

        mod sqlite {
            use crate::store::SqliteStore;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = SqliteStore::open(dir.path()).await.unwrap();
                    super::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

use super::contract::*;
use super::retention::*;
use super::triggers::*;

contract_tests!(
    expired_builds_follow_age_and_count,
    delete_builds_spares_queued_and_running,
    master_id_is_stable,
    insert_gives_growing_ids,
    save_build_round_trips,
    save_build_orders_attempts_and_steps,
    save_build_refuses_bad_builds,
    save_builds_saves_all_or_none,
    list_builds_newest_first,
    query_builds_filters_the_whole_history_and_pages,
    unfinished_builds_oldest_first,
    recent_submits_keep_each_builders_newest,
    recent_submits_return_only_what_the_grid_shows,
    every_state_round_trips,
    ledger_upserts_and_orders,
    live_instances_match_is_live,
    cost_rows_hold_the_window_and_the_attempts_of_its_workers,
    tokens_insert_find_list_revoke,
    submitted_by_round_trips,
    ledger_keeps_who_ended_a_row,
    probe_writes,
    idempotent_insert_replays_and_refuses_other_requests,
    deliveries_are_remembered_per_source,
    source_heads_upsert_per_branch,
    github_jobs_are_replaced_and_found_by_build,
    reports_queue_once_and_follow_their_build,
    every_saved_state_of_a_watched_submit_is_queued_once,
);
