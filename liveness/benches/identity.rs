//! Identity benchmarks (issue 10), one core: `taskset -c 1 cargo bench -p liveness --bench
//! identity`. Cards per second (front side of a synthetic degraded card: decode, find and
//! rectify, read every field) and face-match latency (detect, align, embed both images,
//! compare). Models as for the tests ($YIQIAN_CACHE/models). Results: docs/performance.md.

// A benchmark stops on a broken set-up: panicking is its way to say so.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use liveness::face::FaceEngine;
use liveness::image::{ImageLimits, decode};
use liveness::models::ModelDir;
use liveness::ocr::{CardReader, rectify};
use liveness::synth::{DEFAULT_FONT, Person, Renderer, Shot, photograph};
use rand::{SeedableRng, rngs::StdRng};

fn front_ocr(c: &mut Criterion) {
    let models = ModelDir::from_env();
    let renderer = Renderer::new(DEFAULT_FONT.as_ref(), &models.test_image("astronaut.png"))
        .expect("renderer (run scripts/setup.sh)");
    let reader = CardReader::load(&models, 1).expect("OCR model");
    let mut rng = StdRng::seed_from_u64(20_261_128);
    let person = Person::random(&mut rng);
    let card = renderer.front(&person.front).expect("card");
    let photo = photograph(&card, &Shot::degraded(&mut rng), &mut rng).expect("photo");
    let limits = ImageLimits::default();
    let mut g = c.benchmark_group("idcard");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("front_degraded_card", |b| {
        b.iter(|| {
            let img = decode(black_box(&photo), &limits).expect("decode");
            let rect = rectify(&img).expect("card");
            black_box(reader.read_front(&rect).expect("read"))
        });
    });
    g.finish();
}

fn face_match(c: &mut Criterion) {
    let models = ModelDir::from_env();
    let engine = FaceEngine::load(&models).expect("face models");
    let limits = ImageLimits::default();
    let astronaut = decode(
        &std::fs::read(models.test_image("astronaut.png")).expect("astronaut"),
        &limits,
    )
    .expect("decode");
    let renderer =
        Renderer::new(DEFAULT_FONT.as_ref(), &models.test_image("astronaut.png")).expect("font");
    // The printed portrait against its source photo: the ID-card check's real pair.
    let portrait = renderer.portrait().clone();
    let mut g = c.benchmark_group("face");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("match_portrait_vs_photo", |b| {
        b.iter(|| black_box(engine.compare(&astronaut, &portrait).expect("compare")));
    });
    g.finish();
}

criterion_group!(benches, front_ocr, face_match);
criterion_main!(benches);
