//! Prometheus metrics of the mock server and the recorder: what both share.
//! A latency histogram made of atomics (prometheus-client's own takes a
//! mutex per observation, which every connection would contend for), the
//! Prometheus text encoding of a per-instance registry, and the HTTP
//! endpoint answering `GET /metrics`.
//!
//! Each server's counters are read where they already are (the replay
//! report, the fault stats, the recorder's summary) by a
//! [`Collector`](prometheus_client::collector::Collector) at scrape time, so
//! what `/metrics` shows and what the report says never disagree, and the
//! hot path pays only for what nothing counted before.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpStream;

use crate::listen::{listen, Listening};
use crate::Error;

/// Every metric name starts with this (and `_`).
pub(crate) const PREFIX: &str = "pgsim";

/// The path the endpoint answers.
pub(crate) const PATH: &str = "/metrics";

/// Upper bounds of the latency buckets, in seconds: 50 µs (a replayed
/// answer from memory) to 10 s (a slow upstream or an injected delay).
const LATENCY_BOUNDS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets: one atomic add for the bucket
/// and one for the sum per observation, no lock.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// The bounds of [`LATENCY_BOUNDS`] in nanoseconds.
    bounds: [u64; LATENCY_BOUNDS.len()],
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds: LATENCY_BOUNDS.map(|s| (s * 1e9) as u64),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Counts one observation.
    pub(crate) fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Prometheus buckets are "less than or equal to" their bound.
        let at = self.bounds.partition_point(|&bound| bound < nanos);
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The buckets as Prometheus wants them (upper bound, count, the last
    /// `+Inf`), the total count and the sum in seconds.
    fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, so `+Inf` always equals it.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, count, sum)
    }

    /// Writes the histogram as metric `name`.
    pub(crate) fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
    ) -> Result<(), std::fmt::Error> {
        let (buckets, count, sum) = self.snapshot();
        encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// Writes a family of histograms: one per label set.
pub(crate) fn histograms<'h, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, &'h Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in values {
        let (buckets, count, sum) = histogram.snapshot();
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

/// Writes one counter without labels (its name gets `_total`).
pub(crate) fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, f64>(&value, None)
}

/// Writes one gauge without labels.
pub(crate) fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// What a labelled family of values is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Only goes up (its name gets `_total`).
    Counter,
    /// A value now.
    Gauge,
}

/// Writes a counter or gauge family: one value per label set.
pub(crate) fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: Kind,
    values: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let metric_type = match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
    };
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in values {
        let mut one = metric.encode_family(&labels)?;
        match kind {
            Kind::Counter => one.encode_counter::<NoLabelSet, _, f64>(&value, None)?,
            Kind::Gauge => one.encode_gauge(&value)?,
        }
    }
    Ok(())
}

/// A registry and, when asked for, the HTTP endpoint serving it.
pub(crate) struct Endpoint {
    registry: Arc<Registry>,
    listening: Option<Listening>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A registry of one collector (its names prefixed `pgsim_`), served
    /// on `addr` when given.
    pub(crate) async fn start(
        collector: impl prometheus_client::collector::Collector,
        addr: Option<SocketAddr>,
    ) -> Result<Self, Error> {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(collector));
        let registry = Arc::new(registry);
        let listening = match addr {
            Some(addr) => {
                let served = Arc::clone(&registry);
                Some(
                    listen(Some(addr), move |stream| {
                        serve_http(stream, Arc::clone(&served))
                    })
                    .await?,
                )
            }
            None => None,
        };
        Ok(Endpoint {
            registry,
            listening,
        })
    }

    /// Where `GET /metrics` is answered, when it is.
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.listening.as_ref().map(|l| l.addr)
    }

    /// The metrics now, in the Prometheus text format (version 0.0.4).
    pub(crate) fn text(&self) -> String {
        encode(&self.registry)
    }

    /// Stops the endpoint (open scrapes may finish; new ones are refused).
    pub(crate) async fn stop(&mut self) {
        if let Some(listening) = self.listening.take() {
            let _ = listening.stop.send(true);
            let _ = listening.task.await;
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(listening) = self.listening.take() {
            listening.task.abort();
        }
    }
}

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        // Writing into a String fails only when a collector does.
        text = format!("# pgsim: encoding the metrics failed: {e}\n");
    }
    text
}

/// How long one scrape connection may take, headers included.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1 connection: `GET /metrics` (or `HEAD`) gets the text, any
/// other path 404, another method on the path 405. Connections are not
/// kept alive, so a stopping server has none left open to wait for.
async fn serve_http(stream: TcpStream, registry: Arc<Registry>) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let registry = Arc::clone(&registry);
        async move { Ok::<_, std::convert::Infallible>(answer(&request, &registry)) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(SCRAPE_TIMEOUT)
        .serve_connection(io, service);
    let _ = tokio::time::timeout(SCRAPE_TIMEOUT, connection).await;
}

fn answer(request: &Request<hyper::body::Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    let text = "text/plain; charset=utf-8";
    if request.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            text,
            format!("pgsim: no such page; the metrics are at {PATH}\n"),
        );
    }
    match *request.method() {
        Method::GET | Method::HEAD => reply(
            StatusCode::OK,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            encode(registry),
        ),
        _ => {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                text,
                format!("pgsim: {PATH} answers GET\n"),
            );
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_bucket_whose_bound_is_at_or_above_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(60));
        let loads: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(loads[0], 1, "50 µs is in le=0.00005");
        assert_eq!(loads[1], 1, "51 µs is in le=0.0001");
        assert_eq!(loads[LATENCY_BOUNDS.len()], 1, "a minute is only in +Inf");
        assert_eq!(loads.iter().sum::<u64>(), 3);
        assert_eq!(h.sum_nanos.load(Ordering::Relaxed), 60_000_101_000);
    }
}
