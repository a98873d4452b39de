//! The C entry points. Every function checks its pointers for null, converts them to
//! slices/references with the lengths the caller passed (GM/T 0018 contract), and catches
//! panics so none unwinds into C.

#![allow(unsafe_code, non_snake_case)]

use std::ffi::c_void;
use std::os::raw::{c_int, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crypto_device::sdf::{EccRefPublicKey, EccSignature, alg, code};

use crate::state::{Rv, device};

type Handle = *mut c_void;

/// The one device handle value (any non-null token).
const DEVICE_TOKEN: usize = 0x5D_F0_50_F7;

fn run(f: impl FnOnce() -> Result<(), Rv>) -> c_int {
    let rv = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => code::SDR_OK,
        Ok(Err(c)) => c,
        Err(_) => code::SDR_UNKNOWERR,
    };
    // The standard's codes are unsigned; C `int` carries the same bits.
    i32::from_ne_bytes(rv.to_ne_bytes())
}

fn session(h: Handle) -> Result<usize, Rv> {
    let s = h.addr();
    device()?.check_session(s)?;
    Ok(s)
}

/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes.
unsafe fn input<'a>(ptr: *const u8, len: c_uint) -> Result<&'a [u8], Rv> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(code::SDR_INARGERR);
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes (function contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len as usize) })
}

/// # Safety
/// `ptr` must be null or valid for writes of `len` bytes.
unsafe fn output<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], Rv> {
    if ptr.is_null() {
        return Err(code::SDR_OUTARGERR);
    }
    // SAFETY: non-null, and the caller guarantees `len` writable bytes (function contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// # Safety
/// `ph` must be a valid pointer to a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_OpenDevice(ph: *mut Handle) -> c_int {
    run(|| {
        device()?;
        if ph.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: non-null out-pointer provided by the caller.
        unsafe { *ph = std::ptr::without_provenance_mut(DEVICE_TOKEN) };
        Ok(())
    })
}

/// # Safety
/// Any value; the device stays loaded for the life of the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_CloseDevice(h: Handle) -> c_int {
    run(|| {
        if h.addr() == DEVICE_TOKEN {
            Ok(())
        } else {
            Err(code::SDR_INARGERR)
        }
    })
}

/// # Safety
/// `ps` must be a valid pointer to a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_OpenSession(h: Handle, ps: *mut Handle) -> c_int {
    run(|| {
        if h.addr() != DEVICE_TOKEN {
            return Err(code::SDR_OPENDEVICE);
        }
        if ps.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        let s = device()?.open_session()?;
        // SAFETY: non-null out-pointer provided by the caller.
        unsafe { *ps = std::ptr::without_provenance_mut(s) };
        Ok(())
    })
}

/// # Safety
/// `s` must be a session handle from `SDF_OpenSession`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_CloseSession(s: Handle) -> c_int {
    run(|| device()?.close_session(s.addr()))
}

/// # Safety
/// `out` must be valid for `len` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_GenerateRandom(s: Handle, len: c_uint, out: *mut u8) -> c_int {
    run(|| {
        session(s)?;
        let r = device()?.random(len as usize)?;
        // SAFETY: function contract: `out` holds `len` bytes.
        unsafe { output(out, len as usize) }?.copy_from_slice(&r);
        Ok(())
    })
}

/// Accepts any password (test library).
///
/// # Safety
/// `pw` must be null or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_GetPrivateKeyAccessRight(
    s: Handle,
    _index: c_uint,
    pw: *mut u8,
    len: c_uint,
) -> c_int {
    run(|| {
        session(s)?;
        // SAFETY: function contract.
        unsafe { input(pw, len) }?;
        Ok(())
    })
}

/// # Safety
/// `s` must be a session handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_ReleasePrivateKeyAccessRight(s: Handle, _index: c_uint) -> c_int {
    run(|| session(s).map(|_| ()))
}

/// # Safety
/// `pk` must point to a writable `ECCrefPublicKey`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_ExportSignPublicKey_ECC(
    s: Handle,
    index: c_uint,
    pk: *mut EccRefPublicKey,
) -> c_int {
    run(|| {
        session(s)?;
        let p = device()?.sign_public(index)?;
        if pk.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: non-null, points to a caller-owned ECCrefPublicKey.
        unsafe { *pk = EccRefPublicKey::from_sm2(&p) };
        Ok(())
    })
}

/// Signs a 32-byte digest e = SM3(Z‖M) computed by the caller.
///
/// # Safety
/// `data` valid for `len` bytes, `sig` a writable `ECCSignature`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_InternalSign_ECC(
    s: Handle,
    index: c_uint,
    data: *mut u8,
    len: c_uint,
    sig: *mut EccSignature,
) -> c_int {
    run(|| {
        session(s)?;
        // SAFETY: function contract.
        let d = unsafe { input(data, len) }?;
        let e: [u8; 32] = d.try_into().map_err(|_| code::SDR_INARGERR)?;
        let out = device()?.sign(index, &e)?;
        if sig.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: non-null, caller-owned ECCSignature.
        unsafe { *sig = EccSignature::from_sig(&out) };
        Ok(())
    })
}

/// SM4-128 session key, returned encrypted under internal KEK `kek` with SM4-ECB.
///
/// # Safety
/// `key` writable for `*key_len` bytes (at least 16), `key_len` and `ph` valid pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_GenerateKeyWithKEK(
    s: Handle,
    bits: c_uint,
    alg_id: c_uint,
    kek: c_uint,
    key: *mut u8,
    key_len: *mut c_uint,
    ph: *mut Handle,
) -> c_int {
    run(|| {
        session(s)?;
        if bits != 128 || alg_id != alg::SGD_SM4_ECB {
            return Err(code::SDR_ALGNOTSUPPORT);
        }
        if key_len.is_null() || ph.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        let (wrapped, h) = device()?.generate_key_with_kek(kek)?;
        // SAFETY: function contract: the buffer holds at least 16 bytes.
        unsafe { output(key, wrapped.len()) }?.copy_from_slice(&wrapped);
        // SAFETY: non-null out-pointers.
        unsafe {
            *key_len = 16;
            *ph = std::ptr::without_provenance_mut(h);
        }
        Ok(())
    })
}

/// # Safety
/// `key` readable for `len` bytes, `ph` a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_ImportKeyWithKEK(
    s: Handle,
    alg_id: c_uint,
    kek: c_uint,
    key: *mut u8,
    len: c_uint,
    ph: *mut Handle,
) -> c_int {
    run(|| {
        session(s)?;
        if alg_id != alg::SGD_SM4_ECB {
            return Err(code::SDR_ALGNOTSUPPORT);
        }
        // SAFETY: function contract.
        let w = unsafe { input(key, len) }?;
        let h = device()?.import_key_with_kek(kek, w)?;
        if ph.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: non-null out-pointer.
        unsafe { *ph = std::ptr::without_provenance_mut(h) };
        Ok(())
    })
}

/// # Safety
/// `k` a key handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_DestroyKey(s: Handle, k: Handle) -> c_int {
    run(|| {
        session(s)?;
        device()?.destroy_key(k.addr())
    })
}

/// # Safety
/// Pointers valid for the given lengths; `iv` 16 bytes for CBC (updated in place).
#[allow(clippy::too_many_arguments)] // mirrors the SDF_Encrypt prototype
unsafe fn cipher(
    enc: bool,
    s: Handle,
    k: Handle,
    alg_id: c_uint,
    iv: *mut u8,
    data: *mut u8,
    len: c_uint,
    out: *mut u8,
    out_len: *mut c_uint,
) -> c_int {
    run(|| {
        session(s)?;
        // SAFETY: function contract.
        let d = unsafe { input(data, len) }?;
        let ivv = if iv.is_null() {
            None
        } else {
            // SAFETY: non-null IV holds 16 bytes (function contract).
            let v = unsafe { output(iv, 16) }?;
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(a)
        };
        let (r, next_iv) = device()?.cipher(enc, k.addr(), alg_id, ivv.as_ref(), d)?;
        if out_len.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: function contract: `out` holds at least `len` bytes (no padding added).
        unsafe { output(out, r.len()) }?.copy_from_slice(&r);
        // SAFETY: non-null out-pointer.
        unsafe { *out_len = c_uint::try_from(r.len()).map_err(|_| code::SDR_OUTARGERR)? };
        if let (Some(n), false) = (next_iv, iv.is_null()) {
            // SAFETY: non-null, 16 bytes.
            unsafe { output(iv, 16) }?.copy_from_slice(&n);
        }
        Ok(())
    })
}

/// # Safety
/// See `SDF_Encrypt` in GM/T 0018: buffers valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_Encrypt(
    s: Handle,
    k: Handle,
    alg_id: c_uint,
    iv: *mut u8,
    data: *mut u8,
    len: c_uint,
    out: *mut u8,
    out_len: *mut c_uint,
) -> c_int {
    // SAFETY: same contract as this function.
    unsafe { cipher(true, s, k, alg_id, iv, data, len, out, out_len) }
}

/// # Safety
/// See `SDF_Decrypt` in GM/T 0018: buffers valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_Decrypt(
    s: Handle,
    k: Handle,
    alg_id: c_uint,
    iv: *mut u8,
    data: *mut u8,
    len: c_uint,
    out: *mut u8,
    out_len: *mut c_uint,
) -> c_int {
    // SAFETY: same contract as this function.
    unsafe { cipher(false, s, k, alg_id, iv, data, len, out, out_len) }
}

/// SM3; with a public key and ID, Z is hashed first (e = SM3(Z‖M)).
///
/// # Safety
/// `pk` null or a valid `ECCrefPublicKey`; `id` valid for `id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_HashInit(
    s: Handle,
    alg_id: c_uint,
    pk: *mut EccRefPublicKey,
    id: *mut u8,
    id_len: c_uint,
) -> c_int {
    run(|| {
        let s = session(s)?;
        if alg_id != alg::SGD_SM3 {
            return Err(code::SDR_ALGNOTSUPPORT);
        }
        let dev = device()?;
        if pk.is_null() {
            return dev.hash_init(s, None);
        }
        // SAFETY: non-null, caller-owned ECCrefPublicKey.
        let key = unsafe { *pk }.to_sm2().map_err(|_| code::SDR_INARGERR)?;
        // SAFETY: function contract.
        let id = unsafe { input(id, id_len) }?;
        dev.hash_init(s, Some((&key, id)))
    })
}

/// # Safety
/// `data` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_HashUpdate(s: Handle, data: *mut u8, len: c_uint) -> c_int {
    run(|| {
        let s = session(s)?;
        // SAFETY: function contract.
        let d = unsafe { input(data, len) }?;
        device()?.hash_update(s, d)
    })
}

/// # Safety
/// `out` writable for 32 bytes, `out_len` a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_HashFinal(s: Handle, out: *mut u8, out_len: *mut c_uint) -> c_int {
    run(|| {
        let s = session(s)?;
        let h = device()?.hash_final(s)?;
        if out_len.is_null() {
            return Err(code::SDR_OUTARGERR);
        }
        // SAFETY: function contract.
        unsafe { output(out, 32) }?.copy_from_slice(&h);
        // SAFETY: non-null out-pointer.
        unsafe { *out_len = 32 };
        Ok(())
    })
}
