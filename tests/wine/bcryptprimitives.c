/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, which wine 8 lacks.
 * Rust's std (1.78+) imports ProcessPrng from it for HashMap seeds and
 * random numbers; this forwards to BCryptGenRandom, which wine has.
 * Built by scripts/setup/build-windows-worker.sh and placed next to
 * burst-worker.exe; never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
