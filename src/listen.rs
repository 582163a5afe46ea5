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

/// The wait after a failed accept (out of file descriptors, ...): doubling
/// from `FIRST` to `MOST` while accept keeps failing, reset by a success.
/// Without it, a listener whose accept fails at once spins a core.
#[derive(Debug, Default)]
struct Backoff {
    wait: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MOST: Duration = Duration::from_secs(1);

    /// The wait after one more failure, and whether it starts a burst (the
    /// one failure of the burst worth logging).
    fn failed(&mut self) -> (Duration, bool) {
        let first = self.wait.is_none();
        let wait = self.wait.map_or(Self::FIRST, |w| (w * 2).min(Self::MOST));
        self.wait = Some(wait);
        (wait, first)
    }

    fn succeeded(&mut self) {
        self.wait = None;
    }
}

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
        let mut backoff = Backoff::default();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        backoff.succeeded();
                        let _ = stream.set_nodelay(true);
                        sessions.spawn(session(stream));
                    }
                    Err(e) => {
                        let (wait, first) = backoff.failed();
                        if first {
                            eprintln!("pgsim: accepting on {local} failed ({e}); retrying, waiting up to {:?} between tries", Backoff::MOST);
                        }
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            _ = stopped.changed() => break,
                        }
                    }
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_up_to_a_second_and_log_once_per_burst() {
        let mut b = Backoff::default();
        let waits: Vec<(Duration, bool)> = (0..10).map(|_| b.failed()).collect();
        assert_eq!(waits[0], (Backoff::FIRST, true));
        assert_eq!(waits[1], (Backoff::FIRST * 2, false));
        assert!(waits[1..].iter().all(|(_, log)| !log));
        assert_eq!(waits[9].0, Backoff::MOST);
        b.succeeded();
        assert_eq!(b.failed(), (Backoff::FIRST, true));
    }
}
