//! The lab's test population (`data/population.yaml`). (STUB: to be implemented.)
