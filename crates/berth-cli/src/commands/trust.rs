//! `berth trust`: signed images in cosign's format. Keys stay on this machine: the engine
//! resolves the image and stores the signature in its registry, the CLI signs. The
//! policy lives in the settings and is handed to the engine.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_host::settings::Settings;
use berth_proto::v1::{AttachSignatureRequest, RegistryAuth, SignaturePayloadRequest, TrustPolicy, VerifySignaturesRequest};
use berth_trust::{PrivateKey, PublicKey};

use super::{CommandResult, Context};
use crate::engine;

/// The variable cosign reads a key's password from; Berth reads the same one.
const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

#[derive(Debug, clap::Subcommand)]
pub enum TrustCommand {
    /// Key pairs.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign an image in its registry (the digest its name resolves to there).
    Sign {
        /// The private key (`NAME.key`, cosign's format).
        #[arg(long)]
        key: PathBuf,
        image: String,
    },
    /// Check an image's signatures in its registry.
    Verify {
        /// Public keys (`NAME.pub`); none: the trust policy's keys for the image.
        #[arg(long)]
        key: Vec<PathBuf>,
        image: String,
    },
    /// Which repositories need a signature by which keys.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Make a key pair: `NAME.key` (sealed with a password, from COSIGN_PASSWORD or asked
    /// for) and `NAME.pub`.
    Generate { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// The rules.
    Ls,
    /// Require a signature by one of these keys for a registry, namespace or repository
    /// (`localhost:5000`, `registry.example.com/team`, `docker.io/library/alpine`).
    Set {
        scope: String,
        /// A public key file; give one or more.
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
    },
    /// Remove a scope's rule.
    Rm { scope: String },
}

pub async fn run(ctx: &Context, cmd: TrustCommand) -> CommandResult {
    match cmd {
        TrustCommand::Key(KeyCommand::Generate { name }) => generate(&name),
        TrustCommand::Sign { key, image } => sign(ctx, &key, &image).await,
        TrustCommand::Verify { key, image } => verify(ctx, &key, &image).await,
        TrustCommand::Policy(cmd) => policy(ctx, cmd).await,
    }
}

fn password(confirm: bool) -> Result<String, String> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!("the key's password: set {PASSWORD_VAR} (no terminal to ask on)"));
    }
    let first = rpassword::prompt_password("Password for the private key: ").map_err(|e| e.to_string())?;
    if confirm && rpassword::prompt_password("Again: ").map_err(|e| e.to_string())? != first {
        return Err("the passwords differ".into());
    }
    Ok(first)
}

fn generate(name: &str) -> CommandResult {
    let (private, public) = (PathBuf::from(format!("{name}.key")), PathBuf::from(format!("{name}.pub")));
    for path in [&private, &public] {
        if path.exists() {
            return Err(format!("{} exists; not overwriting it", path.display()).into());
        }
    }
    let password = password(true)?;
    let key = PrivateKey::generate();
    write_new(&private, key.seal(password.as_bytes()).as_bytes(), true)?;
    if let Err(e) = write_new(&public, key.public().to_pem().as_bytes(), false) {
        let _ = std::fs::remove_file(&private);
        return Err(e.into());
    }
    println!("Private key written to {}", private.display());
    println!("Public key written to {} ({})", public.display(), key.public().fingerprint());
    Ok(ExitCode::SUCCESS)
}

/// Writes a file that must not exist yet; a private one readable by its owner only.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

fn auth_for(image: &str) -> Result<Option<RegistryAuth>, String> {
    let registry = berth_host::credentials::registry_of(image);
    Ok(berth_host::credentials::load(&registry).map_err(|e| e.to_string())?.map(|l| RegistryAuth { username: l.username, password: l.password }))
}

fn read_public(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

async fn sign(ctx: &Context, key: &Path, image: &str) -> CommandResult {
    let text = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let private = PrivateKey::open(&text, password(false)?.as_bytes()).map_err(|e| format!("{}: {e}", key.display()))?;
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let auth = auth_for(image)?;
    let to_sign = agent
        .images()
        .signature_payload(SignaturePayloadRequest { reference: image.to_owned(), auth: auth.clone() })
        .await
        .map_err(|s| CallError::from_status("sign", s))?
        .into_inner();
    let signature = berth_trust::signature::sign(&private, &to_sign.payload);
    let attached = agent
        .images()
        .attach_signature(AttachSignatureRequest { reference: image.to_owned(), payload: to_sign.payload, signature, auth })
        .await
        .map_err(|s| CallError::from_status("sign", s))?
        .into_inner();
    println!("Signed {}@{} with {}", to_sign.repository, to_sign.digest, private.public().fingerprint());
    println!("Signatures stored at {}:{} ({} in all)", to_sign.repository, attached.tag, attached.signatures);
    Ok(ExitCode::SUCCESS)
}

async fn verify(ctx: &Context, keys: &[PathBuf], image: &str) -> CommandResult {
    let keys = keys.iter().map(|k| read_public(k)).collect::<Result<Vec<_>, _>>()?;
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let request = VerifySignaturesRequest { reference: image.to_owned(), keys, auth: auth_for(image)? };
    let checked = agent.images().verify_signatures(request).await.map_err(|s| CallError::from_status("verify", s))?.into_inner();
    if checked.verified_by.is_empty() {
        eprintln!("Error: no signature of {image} ({}) verifies with the given keys ({} signature(s) found)", checked.digest, checked.found);
        return Ok(ExitCode::from(1));
    }
    println!("Verified {image} ({})", checked.digest);
    for key in &checked.verified_by {
        println!("  signed by {key}");
    }
    for identity in &checked.identities {
        println!("  for {identity}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn policy(ctx: &Context, cmd: PolicyCommand) -> CommandResult {
    let mut settings = Settings::load(&ctx.home)?;
    match cmd {
        PolicyCommand::Ls => {
            if settings.trust_policy.is_empty() {
                println!("No rules: no image needs a signature (unless DOCKER_CONTENT_TRUST is set).");
            }
            for rule in &settings.trust_policy.rules {
                let keys: Vec<String> = rule.keys.iter().map(|k| PublicKey::from_pem(k).map(|p| p.fingerprint()).unwrap_or_else(|e| e.to_string())).collect();
                println!("{}\t{}", rule.scope, keys.join(", "));
            }
            return Ok(ExitCode::SUCCESS);
        }
        PolicyCommand::Set { scope, key } => {
            let keys = key.iter().map(|k| read_public(k)).collect::<Result<Vec<_>, _>>()?;
            settings.trust_policy.set(&scope, keys)?;
        }
        PolicyCommand::Rm { scope } => {
            if !settings.trust_policy.remove(&scope) {
                return Err(format!("the trust policy has no rule for {scope}").into());
            }
        }
    }
    settings.save(&ctx.home)?;
    // The running engine takes it now; one that is not running takes it from the
    // settings when it starts.
    let json = String::from_utf8_lossy(&settings.trust_policy.to_bytes()).into_owned();
    match engine::connect(ctx.host.as_deref(), &ctx.home).await {
        Ok((_, agent)) => {
            agent.images().set_trust_policy(TrustPolicy { json }).await.map_err(|s| CallError::from_status("trust policy", s))?;
            println!("Trust policy saved; the engine enforces it now.");
        }
        Err(_) => println!("Trust policy saved; the engine enforces it when it starts."),
    }
    Ok(ExitCode::SUCCESS)
}
