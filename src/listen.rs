//! What the mock server and the recording proxy share: bind, accept until
//! told to stop, then drain open sessions for a bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::task::JoinSet;

use crate::Error;

/// How long open sessions may take to finish after a shutdown request.
const DRAIN: Duration = Duration::from_secs(2);

/// A listening accept loop and the handle that stops it.
pub(crate) struct Listening {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: JoinHandle<()>,
}

/// Binds `addr` (default `127.0.0.1:0`) and runs `session` for every
/// accepted connection until the returned `stop` is set.
pub(crate) async fn listen<F, Fut>(
    addr: Option<SocketAddr>,
    mut session: F,
) -> Result<Listening, Error>
where
    F: FnMut(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = stream.set_nodelay(true);
                        sessions.spawn(session(stream));
                    }
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                _ = stopped.changed() => break,
            }
        }
        drop(listener);
        let drain = async { while sessions.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(DRAIN, drain).await;
        sessions.abort_all();
    });
    Ok(Listening {
        addr: local,
        stop,
        task,
    })
}
