//! `berth login` and `berth logout`: credentials checked against the
//! registry and kept where docker keeps them (`$DOCKER_CONFIG/config.json`
//! or its credential helper), so docker, skopeo and berth share them.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_image::reference::DEFAULT_DOMAIN;
use berth_image::registry::block_on;

use super::registry_opts::RegistryOpts;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry (host[:port]); Docker Hub when absent.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// The password (visible in `ps`: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry (host[:port]); Docker Hub when absent.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// `docker login`'s server argument as a reference domain:
/// `https://reg:5000/v2/` → `reg:5000`; Docker Hub's spellings →
/// `docker.io`.
fn domain_of(server: Option<&str>) -> String {
    let Some(server) = server else {
        return DEFAULT_DOMAIN.to_owned();
    };
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_DOMAIN.to_owned(),
        other => other.to_owned(),
    }
}

pub fn run_login(args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let domain = domain_of(args.server.as_deref());
    let registry = args.registry.registry()?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        prompt_hidden("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        bail!("a username and a password are needed to log in to {domain}");
    }
    block_on(berth_image::registry::login_check(
        registry.insecure(),
        &domain,
        &username,
        &password,
    ))?
    .with_context(|| format!("cannot log in to {domain}"))?;
    let place = registry
        .docker_config()
        .store(&domain, &username, &password)
        .with_context(|| format!("cannot save the credentials for {domain}"))?;
    if !place.starts_with("credential helper") {
        eprintln!("WARNING! Your password will be stored unencrypted in {place}.");
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn run_logout(args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let domain = domain_of(args.server.as_deref());
    let config = berth_image::registry::DockerConfig::from_env();
    if config
        .erase(&domain)
        .with_context(|| format!("cannot remove the credentials for {domain}"))?
    {
        println!("Removing login credentials for {domain}");
    } else {
        println!("Not logged in to {domain}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; a password without a terminal must come from
/// `--password-stdin`.
fn prompt(question: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "cannot ask for {} without a terminal: pass -u and --password-stdin",
            question.trim_end_matches(": ").to_lowercase()
        );
    }
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// [`prompt`] with the terminal's echo off, as `docker login` asks.
fn prompt_hidden(question: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let Ok(saved) = tcgetattr(&stdin) else {
        return prompt(question);
    };
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn the terminal's echo off")?;
    let answer = prompt(question);
    // Restored whatever the read did; the newline the user typed was
    // not echoed.
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_become_domains() {
        assert_eq!(domain_of(None), "docker.io");
        assert_eq!(domain_of(Some("https://index.docker.io/v1/")), "docker.io");
        assert_eq!(
            domain_of(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(domain_of(Some("reg.lan")), "reg.lan");
    }
}
