mod ssh;
