//! The kernel registry shared by the packing ([`crate::bitpack`]) and the GEMV
//! ([`crate::gemv`]) code: which implementations this build contains, which this CPU
//! runs (detected once) and which one runs by default (`SERLAQ_KERNELS`). Both of
//! those modules import it; it imports neither.

use std::sync::OnceLock;

/// One implementation of the packing and GEMV kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable 64-bit word code (any CPU).
    Portable,
    /// AVX2 + FMA (x86-64).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 F/BW/VBMI + BMI2 (x86-64; only with the cargo feature `avx512`).
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    Avx512,
}

impl Kernel {
    /// Every kernel this build contains, from the plainest to the fastest.
    pub const COMPILED: &'static [Kernel] = &[
        Kernel::Portable,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2,
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        Kernel::Avx512,
    ];

    /// The name `SERLAQ_KERNELS` and the Python binding use.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Kernel::Avx512 => "avx512",
        }
    }

    /// The compiled kernel called `name`, if any.
    pub fn parse(name: &str) -> Option<Kernel> {
        Kernel::COMPILED.iter().copied().find(|k| k.name() == name)
    }

    /// The compiled kernels this CPU can run, plainest first (the registry tests loop
    /// over). The CPU is inspected once per process.
    pub fn available() -> &'static [Kernel] {
        static AVAILABLE: OnceLock<Vec<Kernel>> = OnceLock::new();
        AVAILABLE.get_or_init(|| Kernel::COMPILED.iter().copied().filter(|k| k.cpu_supports()).collect())
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        Kernel::available().contains(&self)
    }

    fn cpu_supports(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vbmi")
                    && is_x86_feature_detected!("bmi2")
            }
        }
    }

    /// The kernel `qgemm`, `pack` and `unpack` use: the one `SERLAQ_KERNELS` names when
    /// it is available, otherwise the last (fastest) available one. Chosen once.
    pub fn selected() -> Kernel {
        static SELECTED: OnceLock<Kernel> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let forced = std::env::var("SERLAQ_KERNELS").ok().and_then(|v| Kernel::parse(v.trim()));
            match forced {
                Some(k) if k.is_available() => k,
                _ => *Kernel::available().last().expect("the portable kernel is always available"),
            }
        })
    }

    /// An error unless this CPU can run the kernel (every `*_with` entry point checks).
    pub fn check_available(self) -> Result<(), String> {
        if self.is_available() {
            Ok(())
        } else {
            Err(format!("kernel {} is not supported by this CPU", self.name()))
        }
    }
}
