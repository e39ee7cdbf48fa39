//! ENTRYPOINT and CMD, combined the way Docker combines them.

/// The argv a container runs, from the image's ENTRYPOINT and CMD and the
/// caller's overrides, exactly as Docker does it:
///
/// - no overrides: image ENTRYPOINT followed by image CMD;
/// - a CMD override replaces the image CMD and keeps the image ENTRYPOINT;
/// - an ENTRYPOINT override (`--entrypoint X`) replaces the ENTRYPOINT and
///   **resets the image CMD**: only the caller's CMD follows it;
/// - an empty ENTRYPOINT override (`--entrypoint ""`, passed as
///   `Some(vec![])`) clears the ENTRYPOINT, and the image CMD is still
///   reset.
///
/// `override_cmd` is `None` when the caller gave no command (a CLI with no
/// trailing args); `Some(vec![])` is an explicit empty command.
pub fn combine_command(
    image_entrypoint: &[String],
    image_cmd: &[String],
    override_entrypoint: Option<Vec<String>>,
    override_cmd: Option<Vec<String>>,
) -> Vec<String> {
    let (entrypoint, cmd) = match override_entrypoint {
        Some(mut ep) => {
            // Docker's CLI turns `--entrypoint ""` into `[""]`; the daemon
            // treats that as no entrypoint.
            if ep.len() == 1 && ep[0].is_empty() {
                ep.clear();
            }
            (ep, override_cmd.unwrap_or_default())
        }
        None => (
            image_entrypoint.to_vec(),
            override_cmd.unwrap_or_else(|| image_cmd.to_vec()),
        ),
    };
    let mut argv = entrypoint;
    argv.extend(cmd);
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn docker_table() {
        // (image entrypoint, image cmd, --entrypoint, cmd args, expected)
        type Row<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            Option<&'a [&'a str]>,
            Option<&'a [&'a str]>,
            &'a [&'a str],
        );
        let table: &[Row] = &[
            // image defaults only
            (&[], &["sh"], None, None, &["sh"]),
            (&["/entry"], &[], None, None, &["/entry"]),
            (
                &["/entry", "-x"],
                &["a", "b"],
                None,
                None,
                &["/entry", "-x", "a", "b"],
            ),
            // CMD override keeps the entrypoint
            (
                &["/entry"],
                &["a"],
                None,
                Some(&["b", "c"]),
                &["/entry", "b", "c"],
            ),
            (&[], &["sh"], None, Some(&["echo", "hi"]), &["echo", "hi"]),
            // explicit empty CMD override
            (&["/entry"], &["a"], None, Some(&[]), &["/entry"]),
            // ENTRYPOINT override resets the image CMD
            (&["/entry"], &["a"], Some(&["/other"]), None, &["/other"]),
            (&[], &["sh"], Some(&["/other"]), None, &["/other"]),
            (
                &["/entry"],
                &["a"],
                Some(&["/other"]),
                Some(&["x"]),
                &["/other", "x"],
            ),
            // --entrypoint "" clears it, image CMD still reset
            (
                &["/entry"],
                &["a"],
                Some(&[""]),
                Some(&["ls", "-l"]),
                &["ls", "-l"],
            ),
            (&["/entry"], &["a"], Some(&[""]), None, &[]),
            (&["/entry"], &["a"], Some(&[]), Some(&["ls"]), &["ls"]),
            // nothing at all
            (&[], &[], None, None, &[]),
        ];
        for (i, (ep, cmd, oep, ocmd, want)) in table.iter().enumerate() {
            let got = combine_command(&v(ep), &v(cmd), oep.map(v), ocmd.map(v));
            assert_eq!(got, v(want), "row {i}");
        }
    }
}
