//! `liveness`: the identity service (`liveness serve`) and the synthetic-data tools that tests
//! and integrators use: `liveness synth card` makes ID-card photos of invented people,
//! `liveness synth live` a portrait's liveness poses (blink, open mouth, head turns). See
//! docs/identity/api.md.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use liveness::antispoof::{AntiSpoof, OnnxAntiSpoof};
use liveness::face::FaceEngine;
use liveness::imagestore::ImageStore;
use liveness::live::Action;
use liveness::models::ModelDir;
use liveness::service::{self, AppState, ServeConfig};
use liveness::synth::live::Portrait;
use liveness::synth::{DEFAULT_FONT, Person, Renderer, Shot, encode, photograph};
use opencv::imgcodecs;
use opencv::prelude::MatTraitConst as _;
use rand::{SeedableRng, rngs::StdRng};
use zeroize::Zeroizing;

#[derive(Parser, Debug)]
#[command(
    name = "liveness",
    version,
    about = "ID-card OCR, face match and liveness (issue 10)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the HTTP service (docs/identity/api.md).
    Serve(ServeArgs),
    /// Synthetic test data.
    #[command(subcommand)]
    Synth(SynthCmd),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Models directory (default: $LIVENESS_MODELS, else $YIQIAN_CACHE/models).
    #[arg(long)]
    models: Option<PathBuf>,
    /// The 68-point landmark model to use instead of the fetched one (docs/identity/models.md:
    /// the fetched model's training data rules out commercial use).
    #[arg(long)]
    landmarks68: Option<PathBuf>,
    /// A passive anti-spoof model in ONNX format supplied by the hospital (contract in
    /// docs/identity/api.md); without one, answers say the check is absent.
    #[arg(long)]
    anti_spoof_model: Option<PathBuf>,
    /// Live score (0..1) a frame needs to pass the anti-spoof model.
    #[arg(long, default_value_t = 0.5, requires = "anti_spoof_model")]
    anti_spoof_threshold: f32,
    /// File holding the shared bearer token (every route but /v1/health then needs it).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Per-request deadline, seconds (fractions allowed).
    #[arg(long, default_value_t = 20.0)]
    timeout_secs: f64,
    /// Requests analysed at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// File holding the challenge MAC key in hex (≥ 16 bytes), shared by instances that must
    /// accept each other's challenges (default: a random key per process).
    #[arg(long)]
    challenge_key_file: Option<PathBuf>,
    /// Keep every image judged here, SM4-GCM encrypted (needs --store-key-file).
    #[arg(long, requires = "store_key_file")]
    store_images: Option<PathBuf>,
    /// File holding the 16-byte SM4 key for --store-images, 32 hex digits.
    #[arg(long, requires = "store_images")]
    store_key_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum SynthCmd {
    /// Photograph one side of a synthetic ID card of an invented person.
    Card(CardArgs),
    /// A portrait's liveness poses, edited with its own 68 landmarks: neutral.png (the photo
    /// itself), blink.png, open_mouth.png, turn_left.png and turn_right.png, lossless.
    Live(LiveArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Side {
    Front,
    Back,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShotKind {
    /// Straight, sharp, PNG.
    Clean,
    /// Rotated, perspective, blur, noise, JPEG.
    Degraded,
}

#[derive(clap::Args, Debug)]
struct CardArgs {
    /// Seed: the same seed gives the same person and photo.
    #[arg(long)]
    seed: u64,
    #[arg(long, value_enum, default_value = "front")]
    side: Side,
    #[arg(long, value_enum, default_value = "clean")]
    shot: ShotKind,
    /// Where to write the photo (PNG for clean, JPEG for degraded).
    #[arg(long)]
    out: PathBuf,
    /// Print the person on the card as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Models directory (for the portrait test image).
    #[arg(long)]
    models: Option<PathBuf>,
    /// CJK font collection.
    #[arg(long, default_value = DEFAULT_FONT)]
    font: PathBuf,
}

#[derive(clap::Args, Debug)]
struct LiveArgs {
    /// The portrait (default: the models directory's astronaut.png).
    #[arg(long)]
    photo: Option<PathBuf>,
    /// Directory to write the poses to (created when missing).
    #[arg(long)]
    out: PathBuf,
    /// Print the files written as JSON on stdout (`{"neutral": path, "blink": path, …}`).
    #[arg(long)]
    json: bool,
    /// Models directory (face detector and 68-point landmarks).
    #[arg(long)]
    models: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Synth(SynthCmd::Card(a)) => synth_card(&a),
        Cmd::Synth(SynthCmd::Live(a)) => synth_live(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liveness: {e}");
            ExitCode::FAILURE
        }
    }
}

fn models_dir(arg: Option<&Path>) -> ModelDir {
    arg.map_or_else(ModelDir::from_env, ModelDir::new)
}

/// A secret file's text, trimmed; the buffer is wiped when dropped.
fn read_secret(path: &Path, what: &str) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?,
    );
    let t = Zeroizing::new(text.trim().to_owned());
    if t.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    Ok(t)
}

fn serve(a: ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if !(a.timeout_secs.is_finite() && a.timeout_secs > 0.0 && a.timeout_secs <= 3600.0) {
        return Err("--timeout-secs must be more than 0 and at most 3600".into());
    }
    let workers = a.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if !(1..=64).contains(&workers) {
        return Err("--workers must be from 1 to 64".into());
    }
    let token = a
        .token_file
        .as_deref()
        .map(|p| read_secret(p, "token file"))
        .transpose()?;
    let challenge_key = match a.challenge_key_file.as_deref() {
        None => None,
        Some(p) => {
            let hexkey = read_secret(p, "challenge key file")?;
            let key =
                Zeroizing::new(hex::decode(hexkey.as_bytes()).map_err(|_| {
                    format!("challenge key file {} must hold hex digits", p.display())
                })?);
            Some(key)
        }
    };
    let store = match (a.store_images.as_deref(), a.store_key_file.as_deref()) {
        (Some(dir), Some(key)) => Some(ImageStore::open(dir, key).map_err(|e| e.to_string())?),
        _ => None,
    };
    let models = match a.landmarks68 {
        Some(p) => models_dir(a.models.as_deref()).with_landmarks68(p),
        None => models_dir(a.models.as_deref()),
    };
    let anti_spoof: Option<Arc<dyn AntiSpoof>> = match a.anti_spoof_model.as_deref() {
        None => None,
        Some(p) => Some(Arc::new(
            OnnxAntiSpoof::load(&models, p, a.anti_spoof_threshold).map_err(|e| e.to_string())?,
        )),
    };
    let state = AppState::load(ServeConfig {
        listen: a.listen,
        models,
        token,
        timeout: Duration::from_secs_f64(a.timeout_secs),
        workers,
        challenge_key,
        store,
        anti_spoof,
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Analyses are bounded by `workers`; a few more for jobs finishing past their deadline.
        .max_blocking_threads(workers * 2 + 2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(service::serve(a.listen, state))
        .map_err(|e| format!("listening on {}: {e}", a.listen))
}

fn synth_card(a: &CardArgs) -> Result<(), String> {
    let models = models_dir(a.models.as_deref());
    let renderer =
        Renderer::new(&a.font, &models.test_image("astronaut.png")).map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let person = Person::random(&mut rng);
    let shot = match a.shot {
        ShotKind::Clean => Shot::clean(),
        ShotKind::Degraded => Shot::degraded(&mut rng),
    };
    let card = match a.side {
        Side::Front => renderer.front(&person.front),
        Side::Back => renderer.back(&person.back),
    }
    .map_err(|e| e.to_string())?;
    let photo = photograph(&card, &shot, &mut rng).map_err(|e| e.to_string())?;
    std::fs::write(&a.out, &photo).map_err(|e| format!("{}: {e}", a.out.display()))?;
    if a.json {
        let f = &person.front;
        let (y, m, d) = f.birth;
        let out = serde_json::json!({
            "name": f.name,
            "sex": f.sex,
            "ethnicity": f.ethnicity,
            "birth_date": format!("{y:04}-{m:02}-{d:02}"),
            "address": f.address,
            "id_number": f.number,
            "authority": person.back.authority,
            "validity": person.back.validity,
            "side": match a.side { Side::Front => "front", Side::Back => "back" },
            "format": if shot.jpeg_quality.is_some() { "jpeg" } else { "png" },
            "out": a.out.display().to_string(),
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{out}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn synth_live(a: &LiveArgs) -> Result<(), String> {
    let models = models_dir(a.models.as_deref());
    let photo = a
        .photo
        .clone()
        .unwrap_or_else(|| models.test_image("astronaut.png"));
    let img = imgcodecs::imread(&photo, imgcodecs::IMREAD_COLOR).map_err(|e| e.to_string())?;
    if img.empty() {
        return Err(format!("{}: not an image", photo.display()));
    }
    let engine = FaceEngine::load(&models).map_err(|e| e.to_string())?;
    let portrait = Portrait::find(&engine, img).map_err(|e| format!("{}: {e}", photo.display()))?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut written = serde_json::Map::new();
    let poses =
        std::iter::once(("neutral", None)).chain(Action::ALL.map(|x| (x.as_str(), Some(x))));
    for (name, action) in poses {
        let img = match action {
            None => portrait.img.clone(),
            Some(x) => portrait.acted(x).map_err(|e| e.to_string())?,
        };
        let out = a.out.join(format!("{name}.png"));
        let png = encode(&img, None).map_err(|e| e.to_string())?;
        std::fs::write(&out, png).map_err(|e| format!("{}: {e}", out.display()))?;
        written.insert(name.to_owned(), out.display().to_string().into());
    }
    if a.json {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", serde_json::Value::Object(written)).map_err(|e| e.to_string())?;
    }
    Ok(())
}
