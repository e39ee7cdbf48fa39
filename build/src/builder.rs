//! [`Builder`]: one build from request to committed image. Parses the
//! Dockerfile, picks the stages the target needs, builds them on one
//! thread each (a stage waits only for the stages it reads), and commits
//! the target stage's image under the requested tags.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use berth_image::{Reference, Store};
use berth_runtime::Runtime;
use berth_spec::dockerfile::Dockerfile;
use berth_spec::dockerignore::DockerIgnore;

use crate::args::BuildArgs;
use crate::cache::Cache;
use crate::context::SourceRoot;
use crate::error::{BuildError, Result, StepAt};
use crate::network::RunNetworks;
use crate::request::{BuildOutcome, BuildRequest, DockerfileSource, Progress, StepReport};
use crate::run_endpoints::TrackedNetworks;
use crate::stage::{StageOut, StageRun};
use crate::statcache::StatCache;

/// Builds images from Dockerfiles into a store, running RUN steps on a
/// runtime. Cheap to clone pieces; one `Builder` may run several builds
/// at once (each call is independent; the cache and store are shared
/// safely across threads and processes).
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) store: Store,
    pub(crate) runtime: Runtime,
    /// Bridge networks for RUN steps; none: `default` means no network.
    pub(crate) run_networks: Option<Arc<TrackedNetworks>>,
}

/// What [`Builder::remove_leftovers`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leftovers {
    /// RUN containers.
    pub containers: usize,
    /// Network endpoints of RUN containers that were gone.
    pub endpoints: usize,
}

/// Stage results shared between stage threads.
pub(crate) struct Board {
    results: Mutex<HashMap<usize, std::result::Result<StageOut, String>>>,
    changed: Condvar,
}

impl Board {
    /// Waits for stage `index` to finish; its error as text when it failed.
    pub fn wait(&self, index: usize) -> std::result::Result<StageOut, String> {
        let mut results = self
            .results
            .lock()
            .map_err(|_| "a stage thread panicked".to_owned())?;
        loop {
            if let Some(r) = results.get(&index) {
                return r.clone();
            }
            results = self
                .changed
                .wait(results)
                .map_err(|_| "a stage thread panicked".to_owned())?;
        }
    }

    fn publish(&self, index: usize, result: std::result::Result<StageOut, String>) {
        if let Ok(mut r) = self.results.lock() {
            r.insert(index, result);
        }
        self.changed.notify_all();
    }
}

struct PublishOnDrop<'a> {
    board: &'a Board,
    index: usize,
    result: Option<std::result::Result<StageOut, String>>,
}

impl Drop for PublishOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.result.take() {
            self.board.publish(self.index, r);
        }
    }
}

/// What every stage of one build shares.
pub(crate) struct Shared<'a> {
    pub builder: &'a Builder,
    pub request: &'a BuildRequest,
    pub dockerfile: &'a Dockerfile,
    pub file_label: String,
    pub context: SourceRoot,
    pub statcache: Mutex<StatCache>,
    pub cache: Cache,
    pub args: BuildArgs,
    pub progress: &'a dyn Progress,
    pub vertex: AtomicU32,
    pub board: Board,
    pub steps: Mutex<Vec<StepReport>>,
    /// SOURCE_DATE_EPOCH, when given.
    pub epoch: Option<u64>,
    pub tmp: PathBuf,
    /// `--build-context`s, checked and checked out.
    pub named: crate::named::NamedContexts,
    /// The build's ssh agents, by id.
    pub ssh: crate::ssh::Agents,
    /// Git sources of ADD (resolved once per build).
    pub git: crate::git::GitSources,
    /// The first stage failure: the other stages stop at their next step.
    pub first_error: Mutex<Option<String>>,
    pub failed: std::sync::atomic::AtomicBool,
}

impl Shared<'_> {
    pub fn next_vertex(&self) -> u32 {
        self.vertex.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Builder {
    /// A builder over `store` (images, layers, the build cache under the
    /// store's root) running RUN containers on `runtime`.
    pub fn new(store: Store, runtime: Runtime) -> Self {
        Self {
            store,
            runtime,
            run_networks: None,
        }
    }

    /// RUN steps on the `default` network (and on a named one) are
    /// attached through `networks`.
    pub fn with_run_networks(mut self, networks: Arc<dyn RunNetworks>) -> Self {
        let records = self.state_dir().join("run-endpoints");
        self.run_networks = Some(Arc::new(TrackedNetworks::new(networks, records)));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `<root>/build`: the builder's own state.
    pub fn state_dir(&self) -> PathBuf {
        self.store.root().join("build")
    }

    /// The folder of a git build context (`berth build <git url>`,
    /// compose's `build.context: <git url>`): the ref resolved on the
    /// remote, that commit checked out once under `<root>/build/git/`,
    /// its `subdir` when the URL names one. The request's secrets give
    /// `GIT_AUTH_TOKEN`; its `default` ssh agent reaches ssh remotes.
    pub fn git_context(&self, url: &str, request: &BuildRequest) -> Result<PathBuf> {
        let agents = crate::ssh::Agents::start(&request.ssh, &self.state_dir().join("tmp"))
            .map_err(BuildError::Invalid)?;
        let mut auth = crate::git::GitAuth::from_secrets(&request.secrets);
        auth.ssh_auth_sock = agents.socket("default").map(Path::to_owned);
        crate::git::GitSources::new(&self.state_dir(), auth)
            .context(url)
            .map_err(|e| BuildError::Invalid(format!("build context {url}: {e}")))
    }

    /// Removes what builds that were killed left: RUN containers whose
    /// shim is gone too (see [`crate::run::remove_leftover_containers`]),
    /// then the network endpoints of RUN containers that are gone (see
    /// `run_endpoints.rs`; only with networks wired). Every build starts
    /// with this, and `builder prune` calls it.
    pub fn remove_leftovers(&self) -> Leftovers {
        let containers = crate::run::remove_leftover_containers(&self.runtime);
        let endpoints = self.run_networks.as_ref().map_or(0, |networks| {
            networks.sweep(&|id| self.runtime.inspect(id).is_ok())
        });
        Leftovers {
            containers,
            endpoints,
        }
    }

    /// Runs one build. Progress goes to `progress` as it happens; the
    /// result names the image and says, per step, whether it ran.
    pub fn build(&self, request: &BuildRequest, progress: &dyn Progress) -> Result<BuildOutcome> {
        self.remove_leftovers();
        let context = request
            .context
            .canonicalize()
            .map_err(|e| BuildError::io(&request.context, e))?;
        if !context.is_dir() {
            return Err(BuildError::Invalid(format!(
                "build context {} is not a directory",
                context.display()
            )));
        }
        if let Some(p) = &request.platform {
            let host = format!("linux/{}", berth_image::platform::host_arch());
            if p != &host && p.trim_end_matches("/v8") != host {
                return Err(BuildError::Invalid(format!(
                    "platform {p} cannot be built here: berth builds for the host platform ({host}) only"
                )));
            }
        }
        let tags = request
            .tags
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map_err(|e| BuildError::Invalid(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let (text, file, file_label) = read_dockerfile(request, &context)?;
        let dockerfile =
            Dockerfile::parse(&text, &file).map_err(|d| BuildError::Dockerfile(d.to_string()))?;
        let ignore = read_dockerignore(&context, request)?;
        let mut args = BuildArgs::new(request.build_args.clone());
        args.globals = dockerfile
            .global_arg_values(&|k| args.global_lookup(k))
            .map_err(|e| BuildError::Dockerfile(format!("{file_label}: {e}")))?;
        for (name, _) in &args.globals {
            args.mark_used(name);
        }
        let needed = dockerfile
            .target_stages(request.target.as_deref(), &|k| args.global_lookup(k))
            .map_err(|d| BuildError::Dockerfile(d.to_string()))?;
        let target = *needed
            .last()
            .ok_or_else(|| BuildError::Dockerfile("no build stage".into()))?;
        let epoch = request
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    BuildError::Invalid(format!(
                        "SOURCE_DATE_EPOCH must be seconds since 1970, not {v:?}"
                    ))
                })
            })
            .transpose()?;
        if epoch.is_some() {
            args.mark_used("SOURCE_DATE_EPOCH");
        }
        args.mark_used(INLINE_CACHE_ARG);
        let cache = self.import_cache(&request.cache_from, progress)?;
        // Nothing this build writes may be collected before it is
        // referenced by the image or the cache.
        let _lease = self.store.lease()?;
        let ssh = crate::ssh::Agents::start(&request.ssh, &self.state_dir().join("tmp"))
            .map_err(BuildError::Invalid)?;
        let mut git_auth = crate::git::GitAuth::from_secrets(&request.secrets);
        git_auth.ssh_auth_sock = ssh.socket("default").map(Path::to_owned);
        let git = crate::git::GitSources::new(&self.state_dir(), git_auth);
        let named = crate::named::NamedContexts::prepare(&request.named_contexts, &git)
            .map_err(BuildError::Invalid)?;
        // A stage a named context replaces is not built (its result is
        // the context), unless it is the target, which takes the context.
        let needed: Vec<usize> = needed
            .into_iter()
            .filter(|&i| {
                i == target
                    || dockerfile
                        .stages
                        .get(i)
                        .and_then(|s| s.name.as_deref())
                        .is_none_or(|n| named.get(n).is_none())
            })
            .collect();
        // After that filter: a stage a named context replaces never runs,
        // so its RUNs ask for nothing (BuildKit never sees them either).
        check_entitlements(&dockerfile, &needed, request, &file_label)?;
        let shared = Shared {
            builder: self,
            request,
            dockerfile: &dockerfile,
            file_label,
            context: SourceRoot::context(context.clone(), ignore),
            statcache: Mutex::new(StatCache::load(
                &self.state_dir().join("statcache"),
                &context,
            )),
            cache,
            args,
            progress,
            vertex: AtomicU32::new(0),
            board: Board {
                results: Mutex::new(HashMap::new()),
                changed: Condvar::new(),
            },
            steps: Mutex::new(Vec::new()),
            epoch,
            tmp: self.state_dir().join("tmp"),
            git,
            named,
            ssh,
            first_error: Mutex::new(None),
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        std::thread::scope(|scope| {
            for &index in &needed {
                let shared = &shared;
                scope.spawn(move || {
                    // Waiters on this stage are released even if it panics.
                    let mut guard = PublishOnDrop {
                        board: &shared.board,
                        index,
                        result: Some(Err("the stage's thread panicked".to_owned())),
                    };
                    let result = StageRun::new(shared, index).and_then(|s| s.build());
                    if let Err(e) = &result
                        && !matches!(e, BuildError::Cancelled)
                        && !shared.failed.swap(true, Ordering::Relaxed)
                        && let Ok(mut first) = shared.first_error.lock()
                    {
                        *first = Some(e.to_string());
                    }
                    guard.result = Some(result.map_err(|e| e.to_string()));
                });
            }
        });
        if let Ok(sc) = shared.statcache.lock() {
            sc.save();
        }
        let first = shared.first_error.lock().ok().and_then(|f| f.clone());
        if let Some(first) = first {
            return Err(BuildError::Invalid(first));
        }
        let out = shared.board.wait(target).map_err(BuildError::Invalid)?;
        let mut state = out.state;
        for (k, v) in &request.labels {
            state.add_label(k, v);
        }
        if let Some(e) = epoch {
            state.created = rfc3339(e);
        }
        let config = state.to_config_json(
            berth_image::platform::host_arch(),
            berth_image::platform::HOST_OS,
            request.inline_cache
                || request
                    .build_args
                    .get(INLINE_CACHE_ARG)
                    .is_some_and(|v| is_true(v)),
        );
        let image = self.store.commit_image(&config, &state.layers, &tags)?;
        let steps = shared.steps.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(BuildOutcome {
            image_id: image.id,
            tags: tags.iter().map(ToString::to_string).collect(),
            steps,
            unused_args: shared.args.unused(),
        })
    }
}

/// BuildKit's build arg asking for the inline cache.
const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

/// BuildKit reads the arg with Go's `strconv.ParseBool`.
fn is_true(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

impl Builder {
    /// The local cache plus the inline cache of each `--cache-from`
    /// image in the store. A missing image is warned about and skipped,
    /// as BuildKit does with a cache source it cannot read.
    fn import_cache(&self, sources: &[String], progress: &dyn Progress) -> Result<Cache> {
        let mut cache = Cache::new(self.store.clone());
        for source in sources {
            let image = match self.store.image(source) {
                Ok(i) => i,
                Err(e) if e.kind() == berth_image::ErrorKind::NotFound => {
                    progress.event(crate::request::Event::Warning(format!(
                        "cache source {source} not found: building without it"
                    )));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let entries = crate::inline_cache::entries(&self.store, &image, source)?;
            if entries.is_empty() {
                progress.event(crate::request::Event::Warning(format!(
                    "cache source {source} has no inline cache (build it with --cache-to type=inline)"
                )));
            }
            tracing::debug!(source = %source, entries = entries.len(), "cache imported");
            cache.import(entries);
        }
        if !sources.is_empty() {
            tracing::debug!(entries = cache.imported(), "cache sources read");
        }
        Ok(cache)
    }
}

/// Refuses the build before any step runs when a RUN of the stages it
/// needs asks for more than it is entitled to, as BuildKit does (ONBUILD
/// triggers are checked when they run).
fn check_entitlements(
    dockerfile: &Dockerfile,
    needed: &[usize],
    request: &BuildRequest,
    file_label: &str,
) -> Result<()> {
    let stages = needed.iter().filter_map(|&i| dockerfile.stages.get(i));
    for command in stages.flat_map(|s| &s.commands) {
        if let berth_spec::dockerfile::Instruction::Run(run) = &command.instruction {
            crate::network::check_entitlements(run, request).map_err(|message| {
                BuildError::Step {
                    at: StepAt {
                        file: file_label.to_owned(),
                        line: command.location.start_line,
                        instruction: command.original.clone(),
                    },
                    message,
                }
            })?;
        }
    }
    Ok(())
}

pub(crate) fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
        .to_string()
}

fn read_dockerfile(request: &BuildRequest, context: &Path) -> Result<(String, PathBuf, String)> {
    match &request.dockerfile {
        Some(DockerfileSource::Inline(text)) => Ok((
            text.clone(),
            PathBuf::from("Dockerfile"),
            "Dockerfile".to_owned(),
        )),
        Some(DockerfileSource::Path(p)) => {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()
                    .map_err(|e| BuildError::io(".", e))?
                    .join(p)
            };
            let text = std::fs::read_to_string(&path).map_err(|e| BuildError::io(&path, e))?;
            let label = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Dockerfile".into());
            Ok((text, path, label))
        }
        None => {
            let path = context.join("Dockerfile");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                BuildError::Invalid(format!(
                    "cannot read {}: {e} (give the Dockerfile with -f)",
                    path.display()
                ))
            })?;
            Ok((text, path, "Dockerfile".to_owned()))
        }
    }
}

/// `<Dockerfile>.dockerignore` next to the Dockerfile wins over the
/// context's `.dockerignore`, as with BuildKit.
fn read_dockerignore(context: &Path, request: &BuildRequest) -> Result<Option<DockerIgnore>> {
    let mut candidates = Vec::new();
    if let Some(DockerfileSource::Path(p)) = &request.dockerfile {
        let mut name = p.as_os_str().to_owned();
        name.push(".dockerignore");
        candidates.push(PathBuf::from(name));
    }
    candidates.push(context.join(".dockerignore"));
    for path in candidates {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return DockerIgnore::parse(&text, &path)
                .map(Some)
                .map_err(|d| BuildError::Invalid(d.to_string()));
        }
    }
    Ok(None)
}

/// Parses `--build-arg`-style `K=V` lists (helper for callers).
pub fn parse_key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_cache_arg_reads_as_go_parse_bool() {
        for v in ["1", "true", "TRUE", "True", "t"] {
            assert!(is_true(v), "{v}");
        }
        for v in ["0", "false", "yes", ""] {
            assert!(!is_true(v), "{v}");
        }
    }
}
