//! One actor per service: it alone owns the service's instances and changes them only on
//! the commands the executor sends, one at a time: reserve, start, roll (rolling restart),
//! scale, stop and adopt. New instances are health-gated (they receive traffic once a probe
//! passes); instances leaving are drained (out of the healthy view, then stopped once the
//! gateway has no request in flight to them).
//!
//! Instance ids are `<service>-<n>` with `n` growing for the life of the service, so a
//! replacement is a new instance with its own log lines, never confused with the one it
//! replaces; `n` starts at 1 again when the service starts from nothing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::health::{ProbeTarget, run_prober};
use super::instance::{Begin, InstanceHandle, Port, Shared};
use super::planner::Fingerprint;
use super::state::InstanceRecord;
use crate::gateway::Gateway;
use crate::logs::ServiceLog;
use crate::manifest::{Launch, LogPolicy, Service};
use crate::process::ports::pick_free_port;
use crate::protocol::{Health, Instance};
use crate::registry::{Event, Filter, InstanceEntry};

/// After an instance leaves the healthy view, requests that read the view just before may
/// still pick it for this long: the drain waits at least this before trusting a zero.
const DRAIN_SETTLE: Duration = Duration::from_millis(20);
/// How often a draining instance's in-flight count is read.
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// What every controller shares.
#[derive(Debug)]
pub struct Context {
    pub shared: Arc<Shared>,
    pub ports: PortBook,
    /// The gateway whose in-flight requests a drain waits for, when one runs.
    pub gateway: Option<Gateway>,
}

/// Ports handed out by this daemon, so instances never collide: the configured port goes to
/// the first instance that finds it unclaimed, every other instance gets a free port that no
/// service has configured.
#[derive(Debug, Default)]
pub struct PortBook {
    inner: Mutex<Ports>,
}

#[derive(Debug, Default)]
struct Ports {
    claimed: BTreeSet<u16>,
    /// Every service's configured port.
    configured: BTreeSet<u16>,
}

impl PortBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ports> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The manifest's configured ports, kept free for the services that configured them.
    pub fn set_configured(&self, ports: BTreeSet<u16>) {
        self.lock().configured = ports;
    }

    /// A port for a new instance of a service configured with `wanted`.
    pub fn claim(&self, wanted: Option<u16>) -> Port {
        let mut ports = self.lock();
        if let Some(port) = wanted.filter(|p| !ports.claimed.contains(p)) {
            ports.claimed.insert(port);
            return Port {
                number: port,
                configured: true,
            };
        }
        let number =
            pick_free_port(&|p| ports.claimed.contains(&p) || ports.configured.contains(&p));
        ports.claimed.insert(number);
        Port {
            number,
            configured: false,
        }
    }

    /// Marks a port in use by an adopted instance.
    pub fn hold(&self, port: u16) {
        self.lock().claimed.insert(port);
    }

    pub fn release(&self, port: u16) {
        self.lock().claimed.remove(&port);
    }
}

/// When a wait for health gives up, and how the timeout is described.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub after: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Self {
        Deadline {
            at: tokio::time::Instant::now() + timeout,
            after: timeout,
        }
    }
}

/// What a service is run with.
#[derive(Debug, Clone)]
pub struct Spec {
    pub service: Arc<Service>,
    pub fingerprint: Fingerprint,
    pub logs: LogPolicy,
}

/// What the planner needs to know of a service, kept current by its controller.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// What runs now (`None` before the first start).
    pub spec: Option<Spec>,
    /// Instances it is meant to run.
    pub replicas: u32,
    /// Set by start, roll, scale and adopt; cleared by stop.
    pub started: bool,
    /// The service's log, once it has one.
    pub log: Option<ServiceLog>,
}

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Reserve {
        replicas: u32,
        reply: Reply<()>,
    },
    Start {
        spec: Spec,
        replicas: u32,
        deadline: Deadline,
        reply: Reply<Result<(), String>>,
    },
    Roll {
        spec: Spec,
        replicas: u32,
        deadline: Deadline,
        reply: Reply<Result<(), String>>,
    },
    Scale {
        replicas: u32,
        deadline: Deadline,
        reply: Reply<Result<(), String>>,
    },
    /// Replaces one running instance (health-gated, drained).
    Replace {
        id: String,
        deadline: Deadline,
        reply: Reply<Result<(), String>>,
    },
    /// Waits until every instance is healthy (a kept service `up` still waits for).
    Settle {
        deadline: Deadline,
        reply: Reply<Result<(), String>>,
    },
    Stop {
        grace: Option<Duration>,
        reply: Reply<()>,
    },
    Adopt {
        spec: Spec,
        records: Vec<InstanceRecord>,
        reply: Reply<()>,
    },
}

/// The executor's handle on one service's controller.
#[derive(Debug, Clone)]
pub struct ServiceController {
    tx: mpsc::Sender<Command>,
    published: Arc<Mutex<Published>>,
    /// Cancelled by `down`: waits in progress give up at once.
    cancel: CancellationToken,
}

impl ServiceController {
    pub fn spawn(name: &str, ctx: Arc<Context>, cancel: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(8);
        let published = Arc::new(Mutex::new(Published::default()));
        let actor = Controller {
            name: name.to_string(),
            ctx,
            spec: None,
            members: Vec::new(),
            reserved: Vec::new(),
            probers: Vec::new(),
            next_ordinal: 1,
            log: None,
            published: published.clone(),
            cancel: cancel.clone(),
        };
        tokio::spawn(actor.run(rx));
        ServiceController {
            tx,
            published,
            cancel,
        }
    }

    pub fn published(&self) -> Published {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What the running settings depend on, without copying the rest of them.
    pub fn depends_on(&self) -> Vec<String> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spec
            .as_ref()
            .map(|spec| spec.service.depends_on.clone())
            .unwrap_or_default()
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(command(reply)).await.ok()?;
        answer.await.ok()
    }

    async fn ask_result(
        &self,
        command: impl FnOnce(Reply<Result<(), String>>) -> Command,
    ) -> Result<(), String> {
        self.ask(command)
            .await
            .unwrap_or_else(|| Err("the daemon is stopping".to_string()))
    }

    /// Puts `replicas` waiting instances in the registry, so status shows what will start.
    pub async fn reserve(&self, replicas: u32) {
        self.ask(|reply| Command::Reserve { replicas, reply }).await;
    }

    pub async fn start(&self, spec: Spec, replicas: u32, deadline: Deadline) -> Result<(), String> {
        self.ask_result(|reply| Command::Start {
            spec,
            replicas,
            deadline,
            reply,
        })
        .await
    }

    pub async fn roll(&self, spec: Spec, replicas: u32, deadline: Deadline) -> Result<(), String> {
        self.ask_result(|reply| Command::Roll {
            spec,
            replicas,
            deadline,
            reply,
        })
        .await
    }

    pub async fn scale(&self, replicas: u32, deadline: Deadline) -> Result<(), String> {
        self.ask_result(|reply| Command::Scale {
            replicas,
            deadline,
            reply,
        })
        .await
    }

    /// Replaces the running instance `id` with a new one, as one step of a rolling restart.
    pub async fn replace(&self, id: String, deadline: Deadline) -> Result<(), String> {
        self.ask_result(|reply| Command::Replace {
            id,
            deadline,
            reply,
        })
        .await
    }

    pub async fn settle(&self, deadline: Deadline) -> Result<(), String> {
        self.ask_result(|reply| Command::Settle { deadline, reply })
            .await
    }

    pub async fn stop(&self, grace: Option<Duration>) {
        self.ask(|reply| Command::Stop { grace, reply }).await;
    }

    pub async fn adopt(&self, spec: Spec, records: Vec<InstanceRecord>) {
        self.ask(|reply| Command::Adopt {
            spec,
            records,
            reply,
        })
        .await;
    }

    /// Makes any wait in progress give up (the daemon is going down).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// One managed instance.
#[derive(Debug)]
struct Member {
    id: String,
    port: u16,
    handle: InstanceHandle,
}

struct Controller {
    name: String,
    ctx: Arc<Context>,
    spec: Option<Spec>,
    /// Running instances, oldest first.
    members: Vec<Member>,
    /// Waiting instances put by `Reserve`, not spawned yet.
    reserved: Vec<String>,
    /// Probers of an external service's instances, by id.
    probers: Vec<(String, CancellationToken)>,
    next_ordinal: u32,
    log: Option<ServiceLog>,
    published: Arc<Mutex<Published>>,
    cancel: CancellationToken,
}

impl Controller {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            match command {
                Command::Reserve { replicas, reply } => {
                    self.reserve(replicas);
                    let _ = reply.send(());
                }
                Command::Start {
                    spec,
                    replicas,
                    deadline,
                    reply,
                } => {
                    let result = self.start(spec, replicas, deadline).await;
                    let _ = reply.send(result);
                }
                Command::Roll {
                    spec,
                    replicas,
                    deadline,
                    reply,
                } => {
                    let result = self.roll(spec, replicas, deadline).await;
                    let _ = reply.send(result);
                }
                Command::Scale {
                    replicas,
                    deadline,
                    reply,
                } => {
                    let result = self.scale(replicas, deadline).await;
                    let _ = reply.send(result);
                }
                Command::Replace {
                    id,
                    deadline,
                    reply,
                } => {
                    let result = match self.spec.as_ref().map(|s| &s.service.launch) {
                        Some(Launch::External(_)) | None => {
                            Err(format!("`{}` is not run by servio", self.name))
                        }
                        _ => self.replace(&id, deadline).await,
                    };
                    let _ = reply.send(result);
                }
                Command::Settle { deadline, reply } => {
                    let ids = self.instance_ids();
                    let _ = reply.send(self.wait_healthy(&ids, deadline).await);
                }
                Command::Stop { grace, reply } => {
                    self.stop(grace).await;
                    let _ = reply.send(());
                }
                Command::Adopt {
                    spec,
                    records,
                    reply,
                } => {
                    self.adopt(spec, records).await;
                    let _ = reply.send(());
                }
            }
        }
    }

    fn registry(&self) -> &crate::registry::Registry {
        &self.ctx.shared.registry
    }

    fn publish(&self, change: impl FnOnce(&mut Published)) {
        change(&mut self.published.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        ids.extend(self.probers.iter().map(|(id, _)| id.clone()));
        ids
    }

    fn next_id(&mut self) -> String {
        let id = format!("{}-{}", self.name, self.next_ordinal);
        self.next_ordinal += 1;
        id
    }

    /// Ids of every instance this controller put in the registry, waiting ones included.
    fn known_ids(&self) -> Vec<String> {
        let mut ids = self.instance_ids();
        ids.extend(self.reserved.iter().cloned());
        if let Some(view) = self.registry().service(&self.name, Filter::All) {
            // Stopped or ended managed instances stay listed after their actors are gone.
            ids.extend(
                view.instances
                    .into_iter()
                    .filter(|i| i.managed)
                    .map(|i| i.id),
            );
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Forgets instances that have ended (and their registry entries) before a fresh start;
    /// waiting instances put by `Reserve` stay.
    async fn clear_ended(&mut self) {
        let stale: Vec<String> = self
            .known_ids()
            .into_iter()
            .filter(|id| !self.reserved.contains(id))
            .collect();
        for member in std::mem::take(&mut self.members) {
            member.handle.stop(Duration::ZERO).await;
            self.ctx.ports.release(member.port);
        }
        for (_, cancel) in std::mem::take(&mut self.probers) {
            cancel.cancel();
        }
        for id in stale {
            self.registry().remove(&self.name, &id);
        }
        if self.reserved.is_empty() {
            self.next_ordinal = 1;
        }
    }

    fn reserve(&mut self, replicas: u32) {
        if !self.members.is_empty() || !self.reserved.is_empty() {
            return;
        }
        for id in self.known_ids() {
            self.registry().remove(&self.name, &id);
        }
        for (_, cancel) in std::mem::take(&mut self.probers) {
            cancel.cancel();
        }
        self.next_ordinal = 1;
        for _ in 0..replicas {
            let id = self.next_id();
            self.registry()
                .put(&self.name, InstanceEntry::waiting(id.clone()));
            self.reserved.push(id);
        }
    }

    async fn adopt_spec(&mut self, spec: Spec) -> Result<(), String> {
        if self.log.is_none() || self.spec.is_none() {
            let path = self.ctx.shared.paths.service_log(&self.name);
            let log = ServiceLog::open(&path, spec.logs)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            self.publish(|p| p.log = Some(log.clone()));
            self.log = Some(log);
        }
        self.registry()
            .ensure_service(&self.name, &spec.service.version);
        self.ctx
            .shared
            .state
            .set_fingerprint(&self.name, Some(spec.fingerprint.clone()))
            .await;
        self.publish(|p| {
            p.spec = Some(spec.clone());
            p.started = true;
        });
        self.spec = Some(spec);
        Ok(())
    }

    async fn start(&mut self, spec: Spec, replicas: u32, deadline: Deadline) -> Result<(), String> {
        self.clear_ended().await;
        self.adopt_spec(spec).await?;
        self.publish(|p| p.replicas = replicas);
        let service = self.service();
        if let Launch::External(addresses) = &service.launch {
            self.reserved.clear();
            for (i, address) in addresses.iter().enumerate() {
                let id = format!("{}-{}", self.name, i + 1);
                self.add_external(id, address.ip().to_string(), address.port());
            }
            return self.wait_healthy(&self.instance_ids(), deadline).await;
        }
        let mut ids = std::mem::take(&mut self.reserved);
        while ids.len() < replicas as usize {
            ids.push(self.next_id());
        }
        ids.truncate(replicas as usize);
        for id in &ids {
            self.spawn_member(id.clone(), Begin::Spawn)?;
        }
        self.wait_healthy(&ids, deadline).await
    }

    fn service(&self) -> Arc<Service> {
        match &self.spec {
            Some(spec) => spec.service.clone(),
            None => unreachable_spec(&self.name),
        }
    }

    /// Starts an actor for a new instance `id` (or an adopted one, on its recorded port).
    fn spawn_member(&mut self, id: String, begin: Begin) -> Result<(), String> {
        let service = self.service();
        let port = match &begin {
            Begin::Adopt(record) => {
                self.ctx.ports.hold(record.port);
                Port {
                    number: record.port,
                    configured: service.port == Some(record.port),
                }
            }
            Begin::Spawn => self.ctx.ports.claim(service.port),
        };
        let Some(log) = self.log.clone() else {
            return Err("the service log is not open".to_string());
        };
        if self.registry().get(&self.name, &id).is_none() {
            self.registry()
                .put(&self.name, InstanceEntry::waiting(id.clone()));
        }
        let handle = InstanceHandle::start(
            self.ctx.shared.clone(),
            service,
            id.clone(),
            port,
            log,
            begin,
        );
        self.members.push(Member {
            id,
            port: port.number,
            handle,
        });
        Ok(())
    }

    /// Rolling restart onto `spec`: for each instance, a replacement starts (on a new port
    /// when the old one still holds it), becomes healthy and enters the healthy view, then
    /// the old one is drained and stopped. A replacement that never becomes healthy is
    /// stopped and the old instance keeps serving.
    async fn roll(&mut self, spec: Spec, replicas: u32, deadline: Deadline) -> Result<(), String> {
        if matches!(spec.service.launch, Launch::External(_)) {
            self.stop(Some(Duration::ZERO)).await;
            return self.start(spec, replicas, deadline).await;
        }
        let previous = self.spec.clone();
        self.adopt_spec(spec).await?;
        let old: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        for id in old {
            if let Err(why) = self.replace(&id, deadline).await {
                // The old instances serve on, with the settings they run with.
                if let Some(previous) = previous {
                    let _ = self.adopt_spec(previous).await;
                }
                return Err(why);
            }
        }
        self.scale(replicas, deadline).await
    }

    /// Replaces the running instance `id`: a replacement starts (on a new port when the old
    /// one still holds it), becomes healthy and enters the healthy view, then the old one is
    /// drained and stopped. A replacement that never becomes healthy is stopped and the old
    /// instance keeps serving, where it was.
    async fn replace(&mut self, id: &str, deadline: Deadline) -> Result<(), String> {
        let Some(position) = self.members.iter().position(|m| m.id == id) else {
            return Err(format!(
                "`{id}` is not a running instance of `{}`",
                self.name
            ));
        };
        let member = self.members.remove(position);
        let new_id = self.next_id();
        if let Err(why) = self.spawn_member(new_id.clone(), Begin::Spawn) {
            self.members.insert(position, member);
            return Err(why);
        }
        if let Err(why) = self.wait_healthy(&[new_id], deadline).await {
            if let Some(failed) = self.members.pop() {
                self.remove_member(failed, Some(Duration::ZERO)).await;
            }
            self.members.insert(position, member);
            return Err(why);
        }
        let freed = member.port;
        self.remove_member(member, None).await;
        if self.service().port == Some(freed) {
            self.return_to_configured_port(deadline).await;
        }
        Ok(())
    }

    /// The instance on the configured port was replaced by one on a free port (the old one
    /// still held it): one more health-gated hop puts a replacement back on the configured
    /// port, so whoever calls the service there directly keeps finding it. If that hop
    /// fails, the instance on the free port keeps serving.
    async fn return_to_configured_port(&mut self, deadline: Deadline) {
        let Some(stand_in) = self.members.pop() else {
            return;
        };
        let id = self.next_id();
        let spawned = self.spawn_member(id.clone(), Begin::Spawn).is_ok();
        let healthy = match spawned {
            true => self.wait_healthy(std::slice::from_ref(&id), deadline).await,
            false => Err("cannot spawn".to_string()),
        };
        match healthy {
            Ok(()) => self.remove_member(stand_in, None).await,
            Err(why) => {
                tracing::warn!(service = %self.name, %why, "could not move back to the configured port");
                if spawned {
                    if let Some(failed) = self.members.pop() {
                        self.remove_member(failed, Some(Duration::ZERO)).await;
                    }
                }
                self.members.push(stand_in);
            }
        }
    }

    /// Up: new instances, health-gated. Down: newest first, drained, then stopped.
    async fn scale(&mut self, replicas: u32, deadline: Deadline) -> Result<(), String> {
        self.publish(|p| p.replicas = replicas);
        let mut added = Vec::new();
        while self.members.len() < replicas as usize {
            let id = self.next_id();
            self.spawn_member(id.clone(), Begin::Spawn)?;
            added.push(id);
        }
        while self.members.len() > replicas as usize {
            if let Some(newest) = self.members.pop() {
                self.remove_member(newest, None).await;
            }
        }
        self.wait_healthy(&added, deadline).await
    }

    /// Drains one instance, stops it and forgets it.
    async fn remove_member(&mut self, member: Member, grace: Option<Duration>) {
        let grace = grace.unwrap_or_else(|| self.service().stop.timeout);
        self.drain(&member.id, grace).await;
        member.handle.stop(grace).await;
        self.registry().remove(&self.name, &member.id);
        self.ctx.ports.release(member.port);
    }

    /// Takes the instance out of the healthy view and waits (at most `grace`) until the
    /// gateway has no request in flight to it.
    async fn drain(&self, id: &str, grace: Duration) {
        self.registry().apply(&self.name, id, Event::Draining);
        wait_until_idle(self.ctx.gateway.as_ref(), &self.name, id, grace).await;
    }

    /// Stops every instance (drained, at once) and keeps them listed as stopped.
    async fn stop(&mut self, grace: Option<Duration>) {
        let grace = grace.unwrap_or_else(|| {
            self.spec
                .as_ref()
                .map_or(Duration::from_secs(10), |s| s.service.stop.timeout)
        });
        let ids = self.known_ids();
        let members = std::mem::take(&mut self.members);
        let mut stops = tokio::task::JoinSet::new();
        for member in members {
            self.registry()
                .apply(&self.name, &member.id, Event::Draining);
            self.ctx.ports.release(member.port);
            let gateway = self.ctx.gateway.clone();
            let name = self.name.clone();
            stops.spawn(async move {
                wait_until_idle(gateway.as_ref(), &name, &member.id, grace).await;
                member.handle.stop(grace).await;
            });
        }
        stops.join_all().await;
        for (_, cancel) in std::mem::take(&mut self.probers) {
            cancel.cancel();
        }
        self.reserved.clear();
        for id in ids {
            self.registry().apply(&self.name, &id, Event::Stopped);
        }
        self.ctx
            .shared
            .state
            .set_fingerprint(&self.name, None)
            .await;
        self.publish(|p| p.started = false);
    }

    /// Takes over instances a crashed daemon left running.
    async fn adopt(&mut self, spec: Spec, records: Vec<InstanceRecord>) {
        if let Err(error) = self.adopt_spec(spec).await {
            tracing::error!(service = %self.name, %error, "cannot adopt");
            return;
        }
        let count = records.len() as u32;
        for record in records {
            let ordinal = record
                .id
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0);
            self.next_ordinal = self.next_ordinal.max(ordinal + 1);
            let id = record.id.clone();
            if let Err(error) = self.spawn_member(id, Begin::Adopt(record)) {
                tracing::error!(service = %self.name, %error, "cannot adopt");
            }
        }
        self.publish(|p| p.replicas = count);
    }

    /// Publishes an instance servio does not run and starts probing it.
    fn add_external(&mut self, id: String, address: String, port: u16) {
        let service = self.service();
        self.registry().put(
            &self.name,
            InstanceEntry::external(id.clone(), address.clone(), port),
        );
        let cancel = self.cancel.child_token();
        self.probers.push((id.clone(), cancel.clone()));
        tokio::spawn(run_prober(
            ProbeTarget {
                registry: self.ctx.shared.registry.clone(),
                service: self.name.clone(),
                instance: id,
                address,
                port,
                check: service.health_check.clone(),
                owner: None,
            },
            cancel,
            None,
        ));
    }

    /// Waits until every instance in `ids` is healthy, one of them fails, or the deadline
    /// passes; the error says which and why.
    async fn wait_healthy(&self, ids: &[String], deadline: Deadline) -> Result<(), String> {
        loop {
            let index = self.registry().index();
            let instances = self
                .registry()
                .service(&self.name, Filter::All)
                .map(|v| v.instances)
                .unwrap_or_default();
            let judged = judge(&instances, ids);
            match judged {
                Judgement::Healthy => return Ok(()),
                Judgement::Failed(why) => return Err(why),
                Judgement::Pending(_) if tokio::time::Instant::now() >= deadline.at => {
                    return Err(judged.timed_out(deadline.after));
                }
                Judgement::Pending(_) => {}
            }
            let wait = deadline
                .at
                .saturating_duration_since(tokio::time::Instant::now());
            tokio::select! {
                _ = self.cancel.cancelled() => return Err("cancelled: the stack is stopping".to_string()),
                _ = self.registry().wait_past(index, wait) => {}
            }
        }
    }
}

/// Waits (at most `grace`) until `gateway` has no request in flight to instance `id`, which
/// has just left the healthy view: the second half of a drain. A service no route leads to
/// has nothing to wait for (a chain of ten such services stopped 20 ms per link).
async fn wait_until_idle(gateway: Option<&Gateway>, service: &str, id: &str, grace: Duration) {
    let Some(gateway) = gateway.filter(|g| g.routes_to(service)) else {
        return;
    };
    let began = Instant::now();
    let deadline = began + grace;
    loop {
        let settled = began.elapsed() >= DRAIN_SETTLE;
        if settled && gateway.in_flight(service, id) == 0 {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(instance = %id, "requests still in flight after {grace:?}; stopping anyway");
            return;
        }
        tokio::time::sleep(DRAIN_CHECK).await;
    }
}

fn unreachable_spec(name: &str) -> Arc<Service> {
    // Every caller sets the spec first (adopt_spec); an empty external service is inert.
    tracing::error!(service = %name, "no settings yet");
    Arc::new(super::supervisor::outside_service(
        name,
        std::path::Path::new("/"),
    ))
}

/// How a set of instances is doing on its way to healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Healthy,
    /// Still on its way: "starting" (no probe answered yet) or "failing its health check".
    Pending(&'static str),
    Failed(String),
}

impl Judgement {
    fn timed_out(&self, after: Duration) -> String {
        let still = match self {
            Judgement::Pending(what) => what,
            _ => "starting",
        };
        format!(
            "not healthy after {} (still {still})",
            humantime::format_duration(after)
        )
    }
}

/// Judges instances `ids` among `instances` (pure): healthy when all are, failed as soon
/// as one has ended or is restarting, otherwise pending.
pub fn judge(instances: &[Instance], ids: &[String]) -> Judgement {
    let mut pending = None;
    for id in ids {
        let Some(instance) = instances.iter().find(|i| &i.id == id) else {
            return Judgement::Failed(format!("{id} is gone"));
        };
        match instance.health {
            Health::Healthy => {}
            Health::Restarting | Health::CrashLooping | Health::Failed | Health::Exited => {
                let why = instance
                    .last_exit
                    .clone()
                    .unwrap_or_else(|| instance.health.to_string());
                return Judgement::Failed(format!("{id} {why}"));
            }
            Health::Stopping | Health::Stopped => {
                return Judgement::Failed(format!("{id} was stopped"));
            }
            Health::Unhealthy => pending = Some("failing its health check"),
            Health::Starting | Health::Waiting => {
                pending = pending.or(Some("starting"));
            }
        }
    }
    match pending {
        Some(what) => Judgement::Pending(what),
        None => Judgement::Healthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, health: Health) -> Instance {
        Instance {
            last_exit: Some("exited with code 1".into()),
            ..Instance::for_test(id, health)
        }
    }

    #[test]
    fn judgement_of_instances_on_their_way_up() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        type Row<'a> = (&'a [(&'a str, Health)], &'a [&'a str], Judgement);
        #[rustfmt::skip]
        let table: &[Row] = &[
            (&[("a", Health::Healthy), ("b", Health::Healthy)], &["a", "b"], Judgement::Healthy),
            (&[("a", Health::Healthy), ("b", Health::Starting)], &["a", "b"], Judgement::Pending("starting")),
            (&[("a", Health::Unhealthy), ("b", Health::Starting)], &["a", "b"], Judgement::Pending("failing its health check")),
            (&[("a", Health::Healthy), ("b", Health::CrashLooping)], &["a", "b"], Judgement::Failed("b exited with code 1".into())),
            (&[("a", Health::Stopped)], &["a"], Judgement::Failed("a was stopped".into())),
            // Only the named instances count: an old one failing does not fail its replacement.
            (&[("a", Health::Failed), ("b", Health::Healthy)], &["b"], Judgement::Healthy),
            (&[], &["a"], Judgement::Failed("a is gone".into())),
            (&[], &[], Judgement::Healthy),
        ];
        for (instances, wanted, expected) in table {
            let instances: Vec<Instance> =
                instances.iter().map(|(id, h)| instance(id, *h)).collect();
            assert_eq!(judge(&instances, &ids(wanted)), *expected, "{instances:?}");
        }
    }

    #[test]
    fn configured_ports_go_to_the_first_claim_and_others_get_free_ports() {
        let book = PortBook::default();
        book.set_configured([45_001, 45_002].into());
        let first = book.claim(Some(45_001));
        assert_eq!((first.number, first.configured), (45_001, true));
        let second = book.claim(Some(45_001));
        assert!(!second.configured);
        assert!(![45_001, 45_002].contains(&second.number), "{second:?}");
        book.release(45_001);
        assert_eq!(book.claim(Some(45_001)).number, 45_001);
    }
}
