/** How many mappings a dump walker's list finds between two progress calls (`iommu walk --list` on a terminal). */
export const PROGRESS_EVERY = 4096;
