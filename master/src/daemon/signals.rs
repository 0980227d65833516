/// Resolves on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn terminate() {
    #[cfg(unix)]
    {
        use burst_common::error_chain::Chain;
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "failed to install a SIGTERM handler; only Ctrl-C stops the master");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
