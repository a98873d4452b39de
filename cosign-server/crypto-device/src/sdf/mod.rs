//! GM/T 0018-2012 (SDF) definitions and the adapter over a vendor `libsdf.so`.
//!
//! The structures below are `#[repr(C)]` copies of the standard's: coordinates are
//! `ECCref_MAX_LEN` = 64-byte fields holding a big-endian value right-aligned (a 256-bit
//! SM2 value occupies the LAST 32 bytes). The same definitions are used by the `sdf-soft`
//! test library, so a layout mistake would show in both — the field order and sizes were
//! checked against the standard's header text (sizes are asserted in tests).

mod adapter;

pub use adapter::{SdfConfig, SdfDevice};

use crate::error::Error;

/// `ECCref_MAX_BITS`.
pub const ECC_REF_MAX_BITS: usize = 512;
/// `ECCref_MAX_LEN` = (ECCref_MAX_BITS + 7) / 8.
pub const ECC_REF_MAX_LEN: usize = 64;

/// `ECCrefPublicKey`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EccRefPublicKey {
    /// Key size in bits (256 for SM2).
    pub bits: u32,
    /// x, right-aligned big-endian.
    pub x: [u8; ECC_REF_MAX_LEN],
    /// y, right-aligned big-endian.
    pub y: [u8; ECC_REF_MAX_LEN],
}

/// `ECCrefPrivateKey` (defined for completeness; private keys never cross the adapter).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EccRefPrivateKey {
    /// Key size in bits.
    pub bits: u32,
    /// K, right-aligned big-endian.
    pub k: [u8; ECC_REF_MAX_LEN],
}

impl std::fmt::Debug for EccRefPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EccRefPrivateKey(<redacted>)")
    }
}

/// `ECCSignature`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EccSignature {
    /// r, right-aligned big-endian.
    pub r: [u8; ECC_REF_MAX_LEN],
    /// s, right-aligned big-endian.
    pub s: [u8; ECC_REF_MAX_LEN],
}

impl EccRefPublicKey {
    /// From an SM2 public key.
    pub fn from_sm2(p: &crate::prims::Sm2PublicKey) -> Self {
        let (x, y) = p.xy();
        let mut k = Self {
            bits: 256,
            x: [0; ECC_REF_MAX_LEN],
            y: [0; ECC_REF_MAX_LEN],
        };
        k.x[32..].copy_from_slice(&x);
        k.y[32..].copy_from_slice(&y);
        k
    }

    /// To an SM2 public key (validates the point and that the high bytes are zero).
    pub fn to_sm2(&self) -> crate::Result<crate::prims::Sm2PublicKey> {
        if self.bits != 256
            || self.x[..32]
                .iter()
                .chain(self.y[..32].iter())
                .any(|&b| b != 0)
        {
            return Err(Error::InvalidInput(
                "ECCrefPublicKey is not a 256-bit key".into(),
            ));
        }
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        x.copy_from_slice(&self.x[32..]);
        y.copy_from_slice(&self.y[32..]);
        crate::prims::Sm2PublicKey::from_xy(&x, &y)
    }
}

impl EccSignature {
    /// From (r, s).
    pub fn from_sig(s: &crate::prims::Sm2Signature) -> Self {
        let mut o = Self {
            r: [0; ECC_REF_MAX_LEN],
            s: [0; ECC_REF_MAX_LEN],
        };
        o.r[32..].copy_from_slice(&s.r);
        o.s[32..].copy_from_slice(&s.s);
        o
    }

    /// To (r, s); the high 32 bytes of each field must be zero.
    pub fn to_sig(&self) -> crate::Result<crate::prims::Sm2Signature> {
        if self.r[..32]
            .iter()
            .chain(self.s[..32].iter())
            .any(|&b| b != 0)
        {
            return Err(Error::InvalidInput(
                "ECCSignature value wider than 256 bits".into(),
            ));
        }
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&self.r[32..]);
        s.copy_from_slice(&self.s[32..]);
        Ok(crate::prims::Sm2Signature { r, s })
    }
}

/// GM/T 0006 algorithm identifiers used here.
pub mod alg {
    /// SM3.
    pub const SGD_SM3: u32 = 0x0000_0001;
    /// SM2 signature.
    pub const SGD_SM2_1: u32 = 0x0002_0200;
    /// SM4-ECB.
    pub const SGD_SM4_ECB: u32 = 0x0000_0401;
    /// SM4-CBC.
    pub const SGD_SM4_CBC: u32 = 0x0000_0402;
    /// SM4-CFB.
    pub const SGD_SM4_CFB: u32 = 0x0000_0404;
    /// SM4-OFB.
    pub const SGD_SM4_OFB: u32 = 0x0000_0408;
    /// SM4-MAC.
    pub const SGD_SM4_MAC: u32 = 0x0000_0410;
}

/// GM/T 0018 return codes.
pub mod code {
    /// Success.
    pub const SDR_OK: u32 = 0;
    /// Base of the error codes.
    pub const SDR_BASE: u32 = 0x0100_0000;
    /// Unknown error.
    pub const SDR_UNKNOWERR: u32 = SDR_BASE + 0x01;
    /// Function not supported.
    pub const SDR_NOTSUPPORT: u32 = SDR_BASE + 0x02;
    /// Communication with the device failed.
    pub const SDR_COMMFAIL: u32 = SDR_BASE + 0x03;
    /// Hardware failure.
    pub const SDR_HARDFAIL: u32 = SDR_BASE + 0x04;
    /// Opening the device failed.
    pub const SDR_OPENDEVICE: u32 = SDR_BASE + 0x05;
    /// Opening a session failed.
    pub const SDR_OPENSESSION: u32 = SDR_BASE + 0x06;
    /// No permission (private key access right).
    pub const SDR_PARDENY: u32 = SDR_BASE + 0x07;
    /// Key does not exist.
    pub const SDR_KEYNOTEXIST: u32 = SDR_BASE + 0x08;
    /// Algorithm not supported.
    pub const SDR_ALGNOTSUPPORT: u32 = SDR_BASE + 0x09;
    /// Algorithm mode not supported.
    pub const SDR_ALGMODNOTSUPPORT: u32 = SDR_BASE + 0x0A;
    /// Public key operation failed.
    pub const SDR_PKOPERR: u32 = SDR_BASE + 0x0B;
    /// Private key operation failed.
    pub const SDR_SKOPERR: u32 = SDR_BASE + 0x0C;
    /// Signing failed.
    pub const SDR_SIGNERR: u32 = SDR_BASE + 0x0D;
    /// Verification failed.
    pub const SDR_VERIFYERR: u32 = SDR_BASE + 0x0E;
    /// Symmetric operation failed.
    pub const SDR_SYMOPERR: u32 = SDR_BASE + 0x0F;
    /// Step error (e.g. HashUpdate before HashInit).
    pub const SDR_STEPERR: u32 = SDR_BASE + 0x10;
    /// File size error.
    pub const SDR_FILESIZEERR: u32 = SDR_BASE + 0x11;
    /// File does not exist.
    pub const SDR_FILENOEXIST: u32 = SDR_BASE + 0x12;
    /// File offset error.
    pub const SDR_FILEOFSERR: u32 = SDR_BASE + 0x13;
    /// Key type error.
    pub const SDR_KEYTYPEERR: u32 = SDR_BASE + 0x14;
    /// Key error.
    pub const SDR_KEYERR: u32 = SDR_BASE + 0x15;
    /// ECC encrypted data error.
    pub const SDR_ENCDATAERR: u32 = SDR_BASE + 0x16;
    /// Random generator error.
    pub const SDR_RANDERR: u32 = SDR_BASE + 0x17;
    /// Private key access right error.
    pub const SDR_PRKRERR: u32 = SDR_BASE + 0x18;
    /// MAC error.
    pub const SDR_MACERR: u32 = SDR_BASE + 0x19;
    /// File exists.
    pub const SDR_FILEEXSITS: u32 = SDR_BASE + 0x1A;
    /// File write error.
    pub const SDR_FILEWERR: u32 = SDR_BASE + 0x1B;
    /// Buffer too small.
    pub const SDR_NOBUFFER: u32 = SDR_BASE + 0x1C;
    /// Input argument error.
    pub const SDR_INARGERR: u32 = SDR_BASE + 0x1D;
    /// Output argument error.
    pub const SDR_OUTARGERR: u32 = SDR_BASE + 0x1E;
}

/// The GM/T 0018 name of a return code.
#[allow(clippy::wildcard_imports)]
pub fn sdr_name(c: u32) -> &'static str {
    use code::*;
    match c {
        SDR_OK => "SDR_OK",
        SDR_UNKNOWERR => "SDR_UNKNOWERR",
        SDR_NOTSUPPORT => "SDR_NOTSUPPORT",
        SDR_COMMFAIL => "SDR_COMMFAIL",
        SDR_HARDFAIL => "SDR_HARDFAIL",
        SDR_OPENDEVICE => "SDR_OPENDEVICE",
        SDR_OPENSESSION => "SDR_OPENSESSION",
        SDR_PARDENY => "SDR_PARDENY",
        SDR_KEYNOTEXIST => "SDR_KEYNOTEXIST",
        SDR_ALGNOTSUPPORT => "SDR_ALGNOTSUPPORT",
        SDR_ALGMODNOTSUPPORT => "SDR_ALGMODNOTSUPPORT",
        SDR_PKOPERR => "SDR_PKOPERR",
        SDR_SKOPERR => "SDR_SKOPERR",
        SDR_SIGNERR => "SDR_SIGNERR",
        SDR_VERIFYERR => "SDR_VERIFYERR",
        SDR_SYMOPERR => "SDR_SYMOPERR",
        SDR_STEPERR => "SDR_STEPERR",
        SDR_FILESIZEERR => "SDR_FILESIZEERR",
        SDR_FILENOEXIST => "SDR_FILENOEXIST",
        SDR_FILEOFSERR => "SDR_FILEOFSERR",
        SDR_KEYTYPEERR => "SDR_KEYTYPEERR",
        SDR_KEYERR => "SDR_KEYERR",
        SDR_ENCDATAERR => "SDR_ENCDATAERR",
        SDR_RANDERR => "SDR_RANDERR",
        SDR_PRKRERR => "SDR_PRKRERR",
        SDR_MACERR => "SDR_MACERR",
        SDR_FILEEXSITS => "SDR_FILEEXSITS",
        SDR_FILEWERR => "SDR_FILEWERR",
        SDR_NOBUFFER => "SDR_NOBUFFER",
        SDR_INARGERR => "SDR_INARGERR",
        SDR_OUTARGERR => "SDR_OUTARGERR",
        _ => "SDR_UNKNOWN_CODE",
    }
}

/// Map an SDF return value to `Ok` or [`Error::Sdf`] (`SDR_KEYNOTEXIST` keeps its code;
/// callers that know the key id map it to [`Error::KeyNotFound`]).
pub fn check(function: &'static str, rv: std::os::raw::c_int) -> crate::Result<()> {
    // C `int` return values are reinterpreted as the standard's unsigned codes.
    let c = u32::from_ne_bytes(rv.to_ne_bytes());
    if c == code::SDR_OK {
        Ok(())
    } else {
        Err(Error::Sdf {
            function,
            code: c,
            name: sdr_name(c),
        })
    }
}
