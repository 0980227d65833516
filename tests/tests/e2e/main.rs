mod windows;
