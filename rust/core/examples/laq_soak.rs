//! Mutation soak of the `.laq` reader on stable Rust (no libFuzzer needed).
//!
//! Builds valid files from random models, then for a bounded time applies random
//! mutations (bit flips, byte stores, inserts, deletes, truncation, splices, and edits of
//! numbers inside the JSON header), half the time repairing the checksum so that the
//! structural checks behind it are reached. Every input must give an error or a file
//! whose accessors all work; a panic is a crash, saved to the output directory.
//!
//! Usage: cargo run --release --example laq_soak -- [--seconds N] [--seed S] [--crashes DIR]

use serlaq_core::format::{
    checksum, encode, LaqError, LaqFile, LayerInput, OwnedLayer, Quantizer, ReadOptions, TensorInput,
};
use serlaq_core::gemv::{qgemm_with, Kernel, QMatrix};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_file(rng: &mut Rng) -> Vec<u8> {
    let n_layers = 1 + rng.below(4);
    let mut owned = Vec::new();
    for i in 0..n_layers {
        let (rows, cols, bits) = (1 + rng.below(24), 1 + rng.below(70), 1 + rng.below(8) as u32);
        let codes: Vec<u8> = (0..rows * cols).map(|_| (rng.next() % (1 << bits)) as u8).collect();
        let n = if rng.below(2) == 0 { 1 } else { rows };
        let scale: Vec<f32> = (0..n).map(|_| rng.below(1000) as f32 / 997.0).collect();
        let zero: Vec<f32> = (0..n).map(|_| rng.below(256) as f32).collect();
        let bias: Option<Vec<f32>> =
            (rng.below(3) > 0).then(|| (0..rows).map(|_| rng.below(100) as f32 - 50.0).collect());
        let name = format!("net.{}", 3 * i);
        owned.push(OwnedLayer { name, rows, cols, bits, quantizer: Quantizer::Affine, codes, scale, zero, bias });
    }
    let layers: Vec<LayerInput> = owned.iter().map(OwnedLayer::input).collect();
    let mean: Vec<f32> = (0..7).map(|i| i as f32).collect();
    let tensors = [
        TensorInput { name: "norm.mean", shape: &[7], data: &mean },
        TensorInput { name: "norm.std", shape: &[7], data: &mean },
    ];
    let meta = r#"{"labels":["a","b"],"laq":{"avg_bits":2.5},"architecture":{"hidden":[16,8]}}"#;
    encode(meta, &layers, &tensors).expect("valid seed")
}

fn mutate(rng: &mut Rng, f: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        if f.is_empty() {
            f.push(rng.next() as u8);
        }
        let at = rng.below(f.len());
        match rng.below(11) {
            0 | 8 => f[at] ^= 1 << rng.below(8),
            1 => f[at] = rng.next() as u8,
            2 => {
                let n = 1 + rng.below(16);
                for _ in 0..n {
                    f.insert(at, rng.next() as u8);
                }
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(f.len());
                f.drain(at..end);
            }
            4 => f.truncate(at),
            5 => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(128)).min(other.len());
                f.splice(at..(at + end - start).min(f.len()), other[start..end].iter().copied());
            }
            6 | 7 | 9 | 10 => {
                // Rewrite a number in the header: offsets, lengths, shapes, bits.
                let header_end = f.len().min(
                    32 + u32::from_le_bytes(f.get(12..16).and_then(|s| s.try_into().ok()).unwrap_or([0; 4])) as usize,
                );
                let digits: Vec<usize> = (32.min(header_end)..header_end).filter(|&i| f[i].is_ascii_digit()).collect();
                if let Some(&d) = digits.get(rng.below(digits.len().max(1))) {
                    let mut end = d;
                    while end < f.len() && f[end].is_ascii_digit() {
                        end += 1;
                    }
                    let choices = ["0", "1", "9", "64", "4294967296", "18446744073709551615", "-1", "1e400", "2.5"];
                    let new = choices[rng.below(choices.len())];
                    f.splice(d..end, new.bytes());
                }
            }
            _ => unreachable!(),
        }
    }
}

fn exercise(f: &LaqFile) {
    for (i, l) in f.layers().iter().enumerate() {
        assert_eq!(f.codes(i).len(), l.rows * l.cols);
        let (scale, zero) = (f.scale_slice(i), f.zero_slice(i));
        assert!(scale.len() == zero.len() && (scale.len() == 1 || scale.len() == l.rows));
        let m = QMatrix::new(f.packed(i), l.rows, l.cols, l.bits, scale, zero).expect("validated layer");
        let mut y = vec![0f32; l.rows];
        // Every kernel this CPU runs, on the same validated layer.
        for &k in Kernel::available() {
            qgemm_with(k, &m, f.bias_slice(i), &vec![1.0; l.cols], 1, &mut y).expect("validated shapes");
            assert!(y.iter().all(|v| !v.is_nan()), "NaN output from finite parameters");
        }
    }
    for i in 0..f.tensors().len() {
        assert_eq!(f.tensor_slice(i).len(), f.tensors()[i].shape.iter().product::<usize>());
    }
}

fn main() {
    let mut seconds = 30.0f64;
    let mut seed = 0x5E71A9u64;
    let mut crash_dir = PathBuf::from("target/laq-soak-crashes");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seconds" => seconds = v.parse().expect("--seconds takes a number"),
            "--seed" => seed = v.parse().expect("--seed takes an integer"),
            "--crashes" => crash_dir = PathBuf::from(v),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    panic::set_hook(Box::new(|_| {})); // crashes are reported below, with their input
    let mut rng = Rng(seed | 1);
    let seeds: Vec<Vec<u8>> = (0..16).map(|_| seed_file(&mut rng)).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut execs, mut accepted, mut crashes) = (0u64, 0u64, 0u64);
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut f = seeds[rng.below(seeds.len())].clone();
            let other = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, &mut f, other);
            let repair = rng.below(2) == 0;
            if repair && f.len() >= 32 {
                // Make the prelude agree with the mutated length and content, so the
                // mutation is judged by the checks behind the prelude.
                let header_len = u32::from_le_bytes(f[12..16].try_into().unwrap()) as u64;
                if let Some(data_len) = (f.len() as u64).checked_sub(32 + header_len) {
                    f[16..24].copy_from_slice(&data_len.to_le_bytes());
                }
                let crc = checksum(&f);
                f[24..28].copy_from_slice(&crc.to_le_bytes());
            }
            let input = f.clone();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                match LaqFile::from_bytes_with(f, ReadOptions { verify_checksum: true }) {
                    Ok(file) => {
                        exercise(&file);
                        Ok(())
                    }
                    Err(LaqError::Format(m)) => Err(m),
                    Err(e) => panic!("non-format error from bytes: {e}"),
                }
            }));
            execs += 1;
            match outcome {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(msg)) => {
                    // Class = the message without the layer/tensor it names, numbers
                    // and parenthesised details.
                    let part =
                        msg.split(':').find(|p| !p.contains("layer ") && !p.contains("tensor \"")).unwrap_or(&msg);
                    let class: String = part
                        .split('(')
                        .next()
                        .unwrap_or(part)
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .take(60)
                        .collect();
                    *classes.entry(class.trim().to_string()).or_default() += 1;
                }
                Err(_) => {
                    crashes += 1;
                    std::fs::create_dir_all(&crash_dir).expect("create crash dir");
                    let p = crash_dir.join(format!("crash-{execs}.laq"));
                    std::fs::write(&p, &input).expect("save crash input");
                    eprintln!("CRASH saved to {}", p.display());
                }
            }
        }
    }
    println!("error classes seen:");
    for (class, n) in &classes {
        println!("  {n:>9}  {class}");
    }
    println!("executions: {execs}  accepted: {accepted}  rejected: {}  crashes: {crashes}", execs - accepted - crashes);
    if crashes > 0 {
        std::process::exit(1);
    }
}
