//! Typed instructions: [`Instruction`] and its payload types, built from an
//! untyped [`Node`] by [`Instruction::from_node`] with BuildKit's
//! per-instruction rules (argument counts, allowed flags, exec vs shell
//! form, heredoc sources, HEALTHCHECK options, ONBUILD triggers).
//!
//! Values are kept as written; [`Instruction::expand`] (in `expand.rs`)
//! substitutes variables where BuildKit does.

use std::time::Duration;

use super::flags::{FlagError, FlagKind, FlagSpec, flag, parse_flags};
use super::heredoc::Heredoc;
use super::mounts::Mount;
use super::parser::Node;

/// Exec form (`["a", "b"]`) or shell form (one string for the shell).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// `--network` of RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `--security` of RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<SecurityMode>,
    /// Heredoc bodies, in the order they were opened.
    pub heredocs: Vec<Heredoc>,
}

/// `key=value` of ENV or LABEL (value unexpanded, quotes kept).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One name of an ARG, with its default when given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A COPY/ADD source given inline as a heredoc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InlineSource {
    /// The heredoc delimiter, used as the file name.
    pub path: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copy {
    pub sources: Vec<String>,
    pub inline_sources: Vec<InlineSource>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Add {
    pub sources: Vec<String>,
    pub inline_sources: Vec<InlineSource>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub exclude: Vec<String>,
    pub unpack: Option<bool>,
}

/// HEALTHCHECK: disabled, or a test command with its timing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Healthcheck {
    None,
    Check {
        test: CommandLine,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// Every Dockerfile instruction except FROM, which starts a stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Instruction {
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    Copy(Copy),
    Add(Add),
    Healthcheck(Healthcheck),
    StopSignal(String),
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

/// FROM: the base (a stage name or image, unexpanded), `AS name`
/// (lower-cased) and `--platform`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FromSpec {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// Why a node is not a valid instruction. `at` is text to point the
/// column at (a flag or argument), when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionError {
    pub message: String,
    pub hint: String,
    pub at: Option<String>,
}

impl InstructionError {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
            at: None,
        }
    }

    pub(crate) fn at(mut self, text: impl Into<String>) -> Self {
        self.at = Some(text.into());
        self
    }
}

impl From<FlagError> for InstructionError {
    fn from(e: FlagError) -> Self {
        Self {
            message: e.message,
            hint: e.hint,
            at: Some(e.written),
        }
    }
}

/// All instruction keywords, for "unknown instruction" hints.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

const RUN_FLAGS: &[FlagSpec] = &[
    flag("mount", FlagKind::Strings),
    flag("network", FlagKind::String),
    flag("security", FlagKind::String),
];
const FROM_FLAGS: &[FlagSpec] = &[flag("platform", FlagKind::String)];

type Parsed<T> = Result<T, InstructionError>;

/// Parses FROM: `FROM [--platform=p] base [AS name]`.
pub fn parse_from(node: &Node) -> Parsed<FromSpec> {
    let flags = parse_flags("FROM", &node.flags, FROM_FLAGS)?;
    let args = &node.args;
    let name = match args.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !is_valid_stage_name(&lower) {
                return Err(InstructionError::new(
                    format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                    "stage names start with a letter and use only letters, digits, '-', '_' and '.'",
                )
                .at(name.clone()));
            }
            Some(lower)
        }
        _ => {
            return Err(InstructionError::new(
                "FROM requires either one or three arguments",
                "write `FROM <image>` or `FROM <image> AS <name>`",
            ));
        }
    };
    Ok(FromSpec {
        base: args.first().cloned().unwrap_or_default(),
        name,
        platform: flags.string("platform"),
    })
}

fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

impl Instruction {
    /// Types one node. FROM is handled by [`parse_from`]; here it is an
    /// error (it can only appear inside ONBUILD at this point).
    pub fn from_node(node: &Node) -> Parsed<Instruction> {
        let name = node.name();
        let no_flags = || parse_flags(&name, &node.flags, &[]);
        let args = &node.args;
        Ok(match name.as_str() {
            "RUN" => Instruction::Run(parse_run(node)?),
            "CMD" => {
                no_flags()?;
                Instruction::Cmd(command_line(node))
            }
            "ENTRYPOINT" => {
                no_flags()?;
                Instruction::Entrypoint(command_line(node))
            }
            "SHELL" => {
                no_flags()?;
                if !node.json {
                    return Err(InstructionError::new(
                        "SHELL requires the arguments to be in JSON form",
                        "write SHELL [\"executable\", \"parameters\"]",
                    ));
                }
                if args.is_empty() {
                    return Err(at_least_one("SHELL"));
                }
                Instruction::Shell(args.clone())
            }
            "ENV" | "LABEL" => {
                no_flags()?;
                let pairs = key_values(&name, args)?;
                if name == "ENV" {
                    Instruction::Env(pairs)
                } else {
                    Instruction::Label(pairs)
                }
            }
            "ARG" => {
                no_flags()?;
                Instruction::Arg(parse_arg(args)?)
            }
            "EXPOSE" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(at_least_one("EXPOSE"));
                }
                Instruction::Expose(args.clone())
            }
            "VOLUME" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(at_least_one("VOLUME"));
                }
                let volumes: Vec<String> = args.iter().map(|v| v.trim().to_string()).collect();
                if volumes.iter().any(String::is_empty) {
                    return Err(InstructionError::new(
                        "VOLUME specified can not be an empty string",
                        "give each volume a path",
                    ));
                }
                Instruction::Volume(volumes)
            }
            "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
                no_flags()?;
                let [value] = args.as_slice() else {
                    return Err(InstructionError::new(
                        format!("{name} requires exactly one argument"),
                        format!("write `{name} <value>`"),
                    ));
                };
                let value = value.clone();
                match name.as_str() {
                    "WORKDIR" => Instruction::Workdir(value),
                    "USER" => Instruction::User(value),
                    "STOPSIGNAL" => Instruction::StopSignal(value),
                    _ => Instruction::Maintainer(value),
                }
            }
            "COPY" => Instruction::Copy(super::copy::parse_copy(node)?),
            "ADD" => Instruction::Add(super::copy::parse_add(node)?),
            "HEALTHCHECK" => Instruction::Healthcheck(super::healthcheck::parse_healthcheck(node)?),
            "ONBUILD" => {
                no_flags()?;
                let Some(sub) = &node.sub else {
                    return Err(at_least_one("ONBUILD"));
                };
                let trigger = sub.name();
                match trigger.as_str() {
                    "ONBUILD" => {
                        return Err(InstructionError::new(
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                            "give ONBUILD a single trigger instruction such as RUN or COPY",
                        ));
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(InstructionError::new(
                            format!("{trigger} isn't allowed as an ONBUILD trigger"),
                            "ONBUILD triggers may be any instruction except FROM, MAINTAINER and ONBUILD",
                        )
                        .at(sub.keyword.clone()));
                    }
                    _ => {}
                }
                Instruction::Onbuild(Box::new(Instruction::from_node(sub)?))
            }
            "FROM" => {
                return Err(InstructionError::new(
                    "FROM cannot be used here",
                    "FROM starts a new stage at the top level",
                ));
            }
            _ => return Err(unknown_instruction(&node.keyword)),
        })
    }
}

pub(crate) fn at_least_one(name: &str) -> InstructionError {
    InstructionError::new(
        format!("{name} requires at least one argument"),
        format!("give {name} its arguments"),
    )
}

/// "unknown instruction", suggesting the nearest keyword when one is close.
pub fn unknown_instruction(keyword: &str) -> InstructionError {
    let upper = keyword.to_uppercase();
    let nearest = INSTRUCTIONS
        .iter()
        .map(|k| (crate::suggest::edit_distance(&upper, k), *k))
        .min()
        .filter(|(d, _)| *d <= 2);
    let mut hint = format!("valid instructions are {}", INSTRUCTIONS.join(", "));
    if let Some((_, k)) = nearest {
        hint = format!("did you mean {k}? {hint}");
    }
    InstructionError::new(format!("unknown instruction: {keyword}"), hint).at(keyword.to_string())
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn parse_run(node: &Node) -> Parsed<Run> {
    let flags = parse_flags("RUN", &node.flags, RUN_FLAGS)?;
    let mut mounts = Vec::new();
    for spec in flags.strings("mount") {
        let mount = Mount::parse(&spec, None).map_err(|e| {
            InstructionError::new(
                format!("invalid --mount: {e}"),
                "e.g. --mount=type=cache,target=/root/.cache (types: bind, cache, tmpfs, secret, ssh)",
            )
            .at(spec.clone())
        })?;
        mounts.push(mount);
    }
    let network = match flags.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(other) => {
            return Err(InstructionError::new(
                format!("unsupported network mode {other:?}"),
                "--network takes default, none or host",
            )
            .at("--network"));
        }
    };
    let security = match flags.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(SecurityMode::Sandbox),
        Some("insecure") => Some(SecurityMode::Insecure),
        Some(other) => {
            return Err(InstructionError::new(
                format!("unsupported security mode {other:?}"),
                "--security takes sandbox or insecure",
            )
            .at("--security"));
        }
    };
    Ok(Run {
        command: command_line(node),
        mounts,
        network,
        security,
        heredocs: node.heredocs.clone(),
    })
}

fn key_values(name: &str, args: &[String]) -> Parsed<Vec<KeyValue>> {
    if args.is_empty() {
        return Err(at_least_one(name));
    }
    let mut out = Vec::with_capacity(args.len() / 3);
    for triple in args.chunks(3) {
        let [key, value, _sep] = triple else {
            return Err(InstructionError::new(
                format!("Bad input to {name}, too many arguments"),
                "write name=value pairs",
            ));
        };
        if key.is_empty() {
            return Err(InstructionError::new(
                format!("{name} names can not be blank"),
                "write name=value with a non-empty name",
            ));
        }
        out.push(KeyValue {
            key: key.clone(),
            value: value.clone(),
        });
    }
    Ok(out)
}

fn parse_arg(args: &[String]) -> Parsed<Vec<ArgDecl>> {
    if args.is_empty() {
        return Err(at_least_one("ARG"));
    }
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some(("", _)) => Err(InstructionError::new(
                "ARG names can not be blank",
                "write ARG name or ARG name=default",
            )
            .at(arg.clone())),
            Some((name, value)) => Ok(ArgDecl {
                name: name.to_string(),
                default: Some(value.to_string()),
            }),
            None => Ok(ArgDecl {
                name: arg.clone(),
                default: None,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names() {
        assert!(is_valid_stage_name("build-env_1.x"));
        assert!(!is_valid_stage_name("1build"));
        assert!(!is_valid_stage_name("a/b"));
    }

    #[test]
    fn nearest_keyword_suggested() {
        let e = unknown_instruction("RUNN");
        assert!(e.hint.starts_with("did you mean RUN?"));
        let e = unknown_instruction("XYZZYQ");
        assert!(e.hint.starts_with("valid instructions are ADD,"));
    }
}
