/*
 * Test-only: prints the arguments it got, as CommandLineToArgvW splits its
 * command line, one per line as <arg> in UTF-8, so tests can check that
 * hostile arguments survive the worker's quoting. Built by
 * scripts/setup/build-windows-worker.sh.
 */
#include <windows.h>
#include <shellapi.h>

static void put(HANDLE out, const char *s, DWORD n)
{
    DWORD written;
    WriteFile(out, s, n, &written, NULL);
}

int main(void)
{
    HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
    int argc = 0;
    LPWSTR *argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (argv == NULL)
        return 2;
    for (int i = 1; i < argc; i++) {
        char buf[8192];
        int n = WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, buf, sizeof buf, NULL, NULL);
        if (n <= 0)
            return 3;
        put(out, "<", 1);
        put(out, buf, (DWORD)(n - 1));
        put(out, ">\n", 2);
    }
    LocalFree(argv);
    return 0;
}
