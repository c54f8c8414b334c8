import { useEffect, useRef, type ReactNode } from 'react';

interface ModalProps {
  open: boolean;
  /** Called when the dialog closed itself (Escape) or should close. */
  onClose: () => void;
  /** Id of the dialog's heading, which becomes its accessible name. */
  labelledBy: string;
  children: ReactNode;
}

/**
 * A native <dialog> opened with showModal(): the browser makes the rest of the page
 * inert (focus stays inside), closes it on Escape, and returns focus afterwards.
 * Children mount only while open, so forms start fresh every time.
 */
export function Modal({ open, onClose, labelledBy, children }: ModalProps) {
  const dialog = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);

  return (
    <dialog ref={dialog} className="modal" aria-labelledby={labelledBy} onClose={onClose}>
      {open && children}
    </dialog>
  );
}
