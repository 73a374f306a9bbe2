//! Proves that tasks-service accepts the gateway's identity credential: a signed
//! `GET /whoami` for a probe user, at start and then every `IDENTITY_PROBE_SECS`.
//!
//! A refusal (401 or 403) means the two sides disagree on `IDENTITY_KEYS` or
//! `IDENTITY_AUDIENCE`: a deployment slip that no retry mends, under which every forwarded
//! request would be refused. The gateway then reports not ready and says why, in `/readyz`,
//! the log and the `gateway_upstream_identity` gauge. An upstream that cannot be reached (or
//! predates `/whoami`) proves nothing either way: the verdict stays as it was, and readiness
//! does not follow the upstream's availability (specs/spec.md says why).

use std::{
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use http::{Method, StatusCode};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use proto_shared::{headers, identity::unix_now, BodyDigest, Signer, UserId};
use tokio_util::sync::CancellationToken;

use crate::upstream::Upstream;

/// The path the probe asks for, and the user it signs for (no one's tasks are read).
const PROBE_PATH: &str = "/whoami";
const PROBE_USER: &str = "gateway-readiness-probe";

/// What the last conclusive probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No probe has reached tasks-service yet.
    Unknown,
    /// tasks-service accepted the credential.
    Accepted,
    /// tasks-service refused it: keys or audience differ.
    Refused,
}

impl Verdict {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Accepted,
            2 => Self::Refused,
            _ => Self::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Accepted => 1,
            Self::Refused => 2,
        }
    }
}

/// The probe's gauge and its count of probes by result.
#[derive(Debug, Clone, Default)]
struct ProbeMetrics {
    state: Gauge,
    probes: Family<ResultLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl ProbeMetrics {
    fn probed(&self, result: &'static str) {
        self.probes.get_or_create(&ResultLabels { result }).inc();
    }
}

/// The probe's last verdict. Cheap to clone; all clones share it.
#[derive(Debug, Clone, Default)]
pub struct UpstreamProbe {
    verdict: Arc<AtomicU8>,
}

impl UpstreamProbe {
    /// Registers the gauge and spawns the probe, which runs until `shutdown` is cancelled.
    /// With `interval` zero no probe runs and the verdict stays unknown.
    pub fn start(
        tasks_service: &Upstream,
        signer: Signer,
        interval: Duration,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Self {
        let probe = Self::default();
        let metrics = ProbeMetrics::default();
        metrics.state.set(-1);
        let registry = registry.sub_registry_with_prefix("gateway");
        registry.register(
            "upstream_identity",
            "Whether tasks-service accepts the gateway's identity credential: 1 yes, 0 no \
             (IDENTITY_KEYS or IDENTITY_AUDIENCE differ), -1 not known yet",
            metrics.state.clone(),
        );
        registry.register(
            "upstream_identity_probes",
            "Identity probes of tasks-service by result",
            metrics.probes.clone(),
        );
        if interval.is_zero() {
            return probe;
        }
        let url = format!(
            "{}://{}{PROBE_PATH}",
            tasks_service.scheme, tasks_service.authority
        );
        let mut client = reqwest::Client::builder()
            .no_proxy()
            // A redirect would carry the signed identity to wherever it points (reqwest keeps
            // custom headers across hosts) and let that host's answer stand for tasks-service's.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5));
        if let Some(path) = &tasks_service.socket {
            client = client.unix_socket(path.clone());
        }
        let client = client.build();
        match client {
            Ok(client) => {
                let shown = tasks_service.address();
                let task = probe
                    .clone()
                    .run(client, url, shown, signer, interval, metrics);
                tokio::spawn(async move {
                    tokio::select! {
                        () = task => {}
                        () = shutdown.cancelled() => {}
                    }
                });
            }
            Err(error) => tracing::error!(%error, "cannot build the upstream probe's client"),
        }
        probe
    }

    /// The last conclusive verdict.
    pub fn verdict(&self) -> Verdict {
        Verdict::from_u8(self.verdict.load(Ordering::Relaxed))
    }

    async fn run(
        self,
        client: reqwest::Client,
        url: String,
        // For logs: where the probe goes (`url` names `localhost` for a Unix socket).
        upstream: String,
        signer: Signer,
        interval: Duration,
        metrics: ProbeMetrics,
    ) {
        let user = UserId::parse(PROBE_USER).expect("the probe user is a valid id");
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let identity = signer.sign(
                &Method::GET,
                PROBE_PATH,
                &user,
                BodyDigest::EMPTY,
                unix_now(),
            );
            let answer = client
                .get(&url)
                .header(headers::USER_ID, identity.user_id)
                .header(headers::IDENTITY_CREDENTIAL, identity.credential)
                .send()
                .await;
            let verdict = match answer.as_ref().map(reqwest::Response::status) {
                // A 3xx (followed by nothing) is inconclusive, below.
                Ok(status) if status.is_success() => Verdict::Accepted,
                Ok(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Verdict::Refused,
                Ok(status) => {
                    metrics.probed("inconclusive");
                    tracing::debug!(%status, %upstream, "upstream identity probe inconclusive");
                    continue;
                }
                Err(error) => {
                    metrics.probed("unreachable");
                    tracing::debug!(%error, %upstream, "upstream identity probe could not reach tasks-service");
                    continue;
                }
            };
            let previous = Verdict::from_u8(self.verdict.swap(verdict.as_u8(), Ordering::Relaxed));
            metrics.state.set(i64::from(verdict == Verdict::Accepted));
            metrics.probed(match verdict {
                Verdict::Refused => "refused",
                _ => "accepted",
            });
            if verdict == previous {
                continue;
            }
            match verdict {
                Verdict::Refused => tracing::error!(
                    %upstream,
                    key_id = %signer.key_id(),
                    audience = %signer.audience(),
                    "tasks-service refuses the gateway's identity credential: IDENTITY_KEYS or \
                     IDENTITY_AUDIENCE differ between the two, or their clocks disagree by more \
                     than IDENTITY_MAX_SKEW_SECS (tasks-service logs the reason); not ready \
                     until they agree"
                ),
                _ => {
                    tracing::info!(%upstream, "tasks-service accepts the gateway's identity credential")
                }
            }
        }
    }
}
