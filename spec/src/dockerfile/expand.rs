//! Variable expansion of typed instructions, where BuildKit does it: ADD,
//! COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults
//! and RUN `--mount` options. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and
//! ONBUILD are left for the shell / the later build ([`Instruction::expand`]).

use super::instruction::{Add, ArgDecl, Copy, Instruction, KeyValue, Run};
use super::mounts::Mount;
use super::shell::{EnvLookup, ExpandError, expand_word, expand_words};

impl Instruction {
    /// A copy with variables substituted from `env` (the stage's ARG and
    /// ENV values) using the Dockerfile's escape character.
    pub fn expand(&self, env: EnvLookup<'_>, escape: char) -> Result<Instruction, ExpandError> {
        let word = |w: &str| expand_word(w, env, escape);
        let opt = |w: &Option<String>| w.as_deref().map(word).transpose();
        let list = |ws: &[String]| ws.iter().map(|w| word(w)).collect::<Result<Vec<_>, _>>();
        let pairs = |kvs: &[KeyValue]| {
            kvs.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: word(&kv.key)?,
                        value: word(&kv.value)?,
                    })
                })
                .collect::<Result<Vec<_>, ExpandError>>()
        };
        Ok(match self {
            Instruction::Env(kvs) => Instruction::Env(pairs(kvs)?),
            Instruction::Label(kvs) => Instruction::Label(pairs(kvs)?),
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: word(&d.name)?,
                            default: opt(&d.default)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ExpandError>>()?,
            ),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(expand_words(p, env, escape)?);
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => Instruction::Volume(list(v)?),
            Instruction::Workdir(w) => Instruction::Workdir(word(w)?),
            Instruction::User(u) => Instruction::User(word(u)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(word(s)?),
            Instruction::Copy(c) => Instruction::Copy(Copy {
                sources: list(&c.sources)?,
                inline_sources: c.inline_sources.clone(),
                dest: word(&c.dest)?,
                from: opt(&c.from)?,
                chown: opt(&c.chown)?,
                chmod: opt(&c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: list(&c.exclude)?,
            }),
            Instruction::Add(a) => Instruction::Add(Add {
                sources: list(&a.sources)?,
                inline_sources: a.inline_sources.clone(),
                dest: word(&a.dest)?,
                chown: opt(&a.chown)?,
                chmod: opt(&a.chmod)?,
                link: a.link,
                checksum: opt(&a.checksum)?,
                keep_git_dir: a.keep_git_dir,
                exclude: list(&a.exclude)?,
                unpack: a.unpack,
            }),
            Instruction::Run(r) => {
                let expander = |v: &str| word(v).map_err(|e| e.to_string());
                let mounts = r
                    .mounts
                    .iter()
                    .map(|m| Mount::parse(&m.spec, Some(&expander)))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|reason| ExpandError {
                        word: r
                            .mounts
                            .iter()
                            .map(|m| m.spec.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        reason,
                    })?;
                Instruction::Run(Run {
                    mounts,
                    ..r.clone()
                })
            }
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dockerfile::Dockerfile;

    #[test]
    fn expands_where_buildkit_does() {
        let df = Dockerfile::parse(
            "FROM x\nENV A=\"$V b\"\nCOPY --chown=$U src/$V /dst/\nRUN echo $V\nEXPOSE $PORTS\nRUN --mount=type=cache,target=/c,uid=$UID true\n",
            Path::new("Dockerfile"),
        )
        .unwrap();
        let env = |k: &str| match k {
            "V" => Some("v1".to_string()),
            "U" => Some("app".to_string()),
            "PORTS" => Some("80 443".to_string()),
            "UID" => Some("7".to_string()),
            _ => None,
        };
        let cmds: Vec<Instruction> = df.stages[0]
            .commands
            .iter()
            .map(|c| c.instruction.expand(&env, '\\').unwrap())
            .collect();
        let Instruction::Env(kv) = &cmds[0] else {
            panic!()
        };
        assert_eq!(kv[0].value, "v1 b");
        let Instruction::Copy(c) = &cmds[1] else {
            panic!()
        };
        assert_eq!(
            (c.chown.as_deref(), c.sources[0].as_str()),
            (Some("app"), "src/v1")
        );
        assert_eq!(cmds[2], df.stages[0].commands[2].instruction);
        assert_eq!(
            cmds[3],
            Instruction::Expose(vec!["80".into(), "443".into()])
        );
        let Instruction::Run(r) = &cmds[4] else {
            panic!()
        };
        assert_eq!(r.mounts[0].uid, Some(7));
    }
}
