//! Defect switches of the embedded reference SUTs. (STUB: to be implemented.)
