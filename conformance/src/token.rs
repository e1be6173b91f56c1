//! `--token-command`: a shell command whose standard output is the bearer token (for example
//! `az account get-access-token --query accessToken -o tsv`), run once per run.

use std::process::Command;

use crate::error::{Error, Result};

/// Runs `command` with `sh -c` and returns its trimmed standard output.
pub fn token_from_command(command: &str) -> Result<String> {
    let output = Command::new("sh").arg("-c").arg(command).output().map_err(|e| Error::Token(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Token(format!("`{command}` exited with {}: {}", output.status, stderr.trim())));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if token.is_empty() {
        return Err(Error::Token(format!("`{command}` printed no token")));
    }
    Ok(token)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::token_from_command;

    #[test]
    fn stdout_is_the_token() {
        assert_eq!(token_from_command("echo '  abc.def  '").unwrap(), "abc.def");
        assert!(token_from_command("exit 3").is_err());
        assert!(token_from_command("true").is_err());
    }
}
