//! Input a stranger controls (issue 10): not an image, an empty file, a 100-megapixel image,
//! a photo without a card. Each gets its own clear error, refused before a large allocation.

use liveness::Error;
use liveness::image::{ImageLimits, decode};
use liveness::models::ModelDir;
use liveness::ocr::rectify;
use liveness::synth::{DEFAULT_FONT, Person, Renderer, Shot, encode, photograph};
use opencv::core::{self, Mat, Scalar};
use opencv::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

/// A PNG whose header claims `w` × `h` pixels (one grey byte each); the pixel data is a
/// deflate stream of an empty row set, so the file is tiny (a decompression bomb's header).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked before the size test
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, *b"IHDR", &ihdr);
    chunk(
        &mut out,
        *b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, *b"IEND", &[]);
    out
}

#[test]
fn empty_file_is_refused() {
    assert!(matches!(
        decode(&[], &ImageLimits::default()),
        Err(Error::EmptyImage)
    ));
}

#[test]
fn text_and_other_formats_are_not_images() {
    let limits = ImageLimits::default();
    for bytes in [
        &b"%PDF-1.7 not a photo"[..],
        b"hello",
        b"GIF89a\x01\x00\x01\x00",
        b"\x89PNG\r\n\x1a\n",
    ] {
        let err = decode(bytes, &limits).expect_err("refused");
        assert!(matches!(err, Error::NotAnImage), "{bytes:?}: {err:?}");
        assert!(err.is_client_error());
        assert_eq!(err.code(), "not_an_image");
    }
    // A JPEG start marker followed by garbage: the header parser or OpenCV refuses it.
    let mut fake = vec![0xff, 0xd8, 0xff, 0xe0];
    fake.extend(std::iter::repeat_n(0x55, 200));
    assert!(matches!(decode(&fake, &limits), Err(Error::NotAnImage)));
}

#[test]
fn hundred_megapixels_are_refused_from_the_header() {
    let bomb = png_header(10_000, 10_000);
    assert!(bomb.len() < 100, "the file itself is tiny");
    let err = decode(&bomb, &ImageLimits::default()).expect_err("refused");
    assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
    assert_eq!(err.code(), "image_too_large");
    // One long side alone is enough.
    assert!(matches!(
        decode(&png_header(9000, 10), &ImageLimits::default()),
        Err(Error::TooLarge(_))
    ));
    // Too many bytes, whatever they are.
    let limits = ImageLimits {
        max_bytes: 1000,
        ..ImageLimits::default()
    };
    assert!(matches!(
        decode(&vec![0xff; 1001], &limits),
        Err(Error::TooLarge(_))
    ));
}

#[test]
fn photos_without_a_card_say_so() {
    let models = ModelDir::from_env();
    let limits = ImageLimits::default();
    // The astronaut photo itself, a flat grey image and a tiny image: no card.
    let astronaut =
        std::fs::read(models.test_image("astronaut.png")).expect("run scripts/setup.sh");
    let grey = encode(
        &Mat::new_rows_cols_with_default(600, 800, core::CV_8UC3, Scalar::all(128.0)).expect("mat"),
        Some(80),
    )
    .expect("jpeg");
    let tiny = encode(
        &Mat::new_rows_cols_with_default(8, 8, core::CV_8UC3, Scalar::all(200.0)).expect("mat"),
        None,
    )
    .expect("png");
    for bytes in [astronaut, grey, tiny] {
        let img = decode(&bytes, &limits).expect("decodes");
        let err = rectify(&img).expect_err("no card");
        assert!(matches!(err, Error::NoCard), "{err:?}");
        assert!(err.message_zh().contains("身份证"));
    }
}

#[test]
fn a_generated_card_is_found_and_rectified_to_the_card_size() {
    let models = ModelDir::from_env();
    let renderer = Renderer::new(DEFAULT_FONT.as_ref(), &models.test_image("astronaut.png"))
        .expect("renderer");
    let mut rng = StdRng::seed_from_u64(7);
    let person = Person::random(&mut rng);
    let card = renderer.front(&person.front).expect("front");
    let photo = photograph(&card, &Shot::degraded(&mut rng), &mut rng).expect("photo");
    let found = rectify(&decode(&photo, &ImageLimits::default()).expect("decode")).expect("card");
    assert_eq!(
        (found.cols(), found.rows()),
        (liveness::layout::CARD_W, liveness::layout::CARD_H)
    );
}
