//! `berth config`: load the project like `docker compose config` and print
//! its normalized form, or one of its lists, or nothing (`--quiet`).
//!
//! Lists (`--volumes`, `--profiles`, ...) are read from the serialized
//! model rather than its Rust fields, so they keep working as the model
//! grows without this module listing its fields.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_spec::compose::{self, model::Project};
use clap::ValueEnum;
use serde_json::Value;

use super::ProjectOpts;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names used by services, one per line.
    #[arg(long = "profiles")]
    pub list_profiles: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Only validate the configuration; print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the output to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let options = args.project.resolve(&cwd, &super::process_environment())?;
    let loaded = match compose::load(&options) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            // One diagnostic per line, `file:line:col: key: message`, so
            // editors and CI annotators can jump to each.
            let mut stderr = std::io::stderr().lock();
            for d in &diagnostics.0 {
                writeln!(stderr, "{d}").context("cannot write to stderr")?;
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    {
        let mut stderr = std::io::stderr().lock();
        for w in &loaded.warnings {
            writeln!(stderr, "{w}").context("cannot write to stderr")?;
        }
    }
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let text = render(&args, &loaded.project)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one list out of the model and its serialized form.
type Lister = fn(&Project, &Value) -> Vec<String>;

/// The text `berth config` prints for `project` under `args`' selection.
pub fn render(args: &ConfigArgs, project: &Project) -> anyhow::Result<String> {
    let lists: [(bool, Lister); 5] = [
        (args.services, |_, v| keys(v, "services")),
        (args.volumes, |_, v| keys(v, "volumes")),
        (args.networks, |_, v| keys(v, "networks")),
        (args.list_profiles, |_, v| profiles(v)),
        (args.images, images),
    ];
    if let Some((_, list)) = lists.iter().find(|(wanted, _)| *wanted) {
        let value = serde_json::to_value(project).context("cannot serialize the project")?;
        return Ok(list(project, &value)
            .into_iter()
            .map(|line| line + "\n")
            .collect());
    }
    match args.format {
        Format::Yaml => {
            serde_norway::to_string(project).context("cannot render the project as YAML")
        }
        Format::Json => {
            let mut text = serde_json::to_string_pretty(project)
                .context("cannot render the project as JSON")?;
            text.push('\n');
            Ok(text)
        }
    }
}

fn keys(project: &Value, section: &str) -> Vec<String> {
    project
        .get(section)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every profile any service names, sorted and unique, as `docker compose
/// config --profiles` prints them.
fn profiles(project: &Value) -> Vec<String> {
    let mut all: Vec<String> = project
        .get("services")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|services| services.values())
        .filter_map(|svc| svc.get("profiles").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Each service's image; a service without one (build only) gets Compose's
/// default name `<project>-<service>`.
fn images(project: &Project, value: &Value) -> Vec<String> {
    value
        .get("services")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(
            |(name, svc)| match svc.get("image").and_then(Value::as_str) {
                Some(image) => image.to_owned(),
                None => format!("{}-{name}", project.name),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::compose::model::Service;
    use clap::Parser;

    fn args(extra: &[&str]) -> ConfigArgs {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: ConfigArgs,
        }
        let argv = std::iter::once("config").chain(extra.iter().copied());
        T::try_parse_from(argv).unwrap().a
    }

    // `..Default::default()` is needless today but keeps this compiling
    // as the model's Service gains fields.
    #[allow(clippy::needless_update)]
    fn project() -> Project {
        let mut p = Project {
            name: "shop".into(),
            ..Default::default()
        };
        p.services.insert(
            "web".into(),
            Service {
                image: Some("nginx:1.27".into()),
                ..Default::default()
            },
        );
        p.services.insert("worker".into(), Service::default());
        p
    }

    #[test]
    fn services_prints_names_one_per_line() {
        let out = render(&args(&["--services"]), &project()).unwrap();
        assert_eq!(out, "web\nworker\n");
    }

    #[test]
    fn images_default_to_project_dash_service() {
        let out = render(&args(&["--images"]), &project()).unwrap();
        assert_eq!(out, "nginx:1.27\nshop-worker\n");
    }

    #[test]
    fn missing_sections_print_nothing() {
        assert_eq!(render(&args(&["--volumes"]), &project()).unwrap(), "");
        assert_eq!(render(&args(&["--networks"]), &project()).unwrap(), "");
        assert_eq!(render(&args(&["--profiles"]), &project()).unwrap(), "");
    }

    #[test]
    fn profiles_are_sorted_and_unique() {
        let v = serde_json::json!({"services": {
            "a": {"profiles": ["debug", "b"]},
            "b": {"profiles": ["debug"]},
            "c": {}
        }});
        assert_eq!(profiles(&v), vec!["b", "debug"]);
    }

    #[test]
    fn yaml_and_json_render_the_whole_model() {
        let yaml = render(&args(&[]), &project()).unwrap();
        let back: Project = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back, project());
        let json = render(&args(&["--format", "json"]), &project()).unwrap();
        assert!(json.ends_with("}\n"));
        let back: Project = serde_json::from_str(&json).unwrap();
        assert_eq!(back, project());
    }
}
