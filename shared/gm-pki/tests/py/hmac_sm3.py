#!/usr/bin/env python3
"""HMAC-SM3 written from RFC 2104 over gmssl's SM3: an independent implementation of the API
request signature (docs/api/signing.md). usage: hmac_sm3.py SECRET_HEX FILE -> hex MAC"""
import sys
from gmssl import sm3, func

def sm3_bytes(data):
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))

key = bytes.fromhex(sys.argv[1])
msg = open(sys.argv[2], "rb").read()
if len(key) > 64:
    key = sm3_bytes(key)
key = key.ljust(64, b"\0")
inner = sm3_bytes(bytes(b ^ 0x36 for b in key) + msg)
print(sm3_bytes(bytes(b ^ 0x5C for b in key) + inner).hex())
