/* The console (docs/console.md). */
