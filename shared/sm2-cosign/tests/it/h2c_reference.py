#!/usr/bin/env python3
# Independent reference for sm2_cosign::seal::hash_to_curve, written from RFC 9380 (not from
# the Rust code): expand_message_xmd with SM3 (gmssl), simplified SWU with Z = -9, RO variant.
# Usage: h2c_reference.py MSG_HEX DST
import sys
from gmssl import sm3
p = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = p - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
Z = p - 9
def H(b): return bytes.fromhex(sm3.sm3_hash(list(b)))
def xmd(msg, dst, n):
    ell = (n + 31)//32
    dst_prime = dst + bytes([len(dst)])
    b0 = H(bytes(64) + msg + n.to_bytes(2,'big') + b'\0' + dst_prime)
    bs = [H(b0 + b'\x01' + dst_prime)]
    for i in range(2, ell+1):
        bs.append(H(bytes(x^y for x,y in zip(b0, bs[-1])) + bytes([i]) + dst_prime))
    return b''.join(bs)[:n]
def inv0(x): return pow(x, p-2, p)
def is_sq(x): return x == 0 or pow(x, (p-1)//2, p) == 1
def sqrt(x): return pow(x, (p+1)//4, p)
def sswu(u):
    tv1 = (Z*Z*pow(u,4,p) + Z*u*u) % p
    if tv1 == 0: x1 = B * inv0(Z*A) % p
    else: x1 = (-B) * inv0(A) * (1 + inv0(tv1)) % p
    gx1 = (x1**3 + A*x1 + B) % p
    x2 = Z*u*u*x1 % p
    gx2 = (x2**3 + A*x2 + B) % p
    if is_sq(gx1): x, y = x1, sqrt(gx1)
    else: x, y = x2, sqrt(gx2)
    if (u % 2) != (y % 2): y = (p - y) % p
    return x, y
def add(P, Q):
    (x1,y1),(x2,y2) = P,Q
    if P == Q: l = (3*x1*x1 + A) * inv0(2*y1) % p
    else: l = (y2-y1) * inv0(x2-x1) % p
    x3 = (l*l - x1 - x2) % p
    return x3, (l*(x1-x3) - y1) % p
msg = bytes.fromhex(sys.argv[1]); dst = sys.argv[2].encode()
u = xmd(msg, dst, 96)
u0 = int.from_bytes(u[:48],'big') % p; u1 = int.from_bytes(u[48:],'big') % p
x, y = add(sswu(u0), sswu(u1))
print("04%064x%064x" % (x, y))
