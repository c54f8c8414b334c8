import { ItemsPanel } from '../components/ItemsPanel';
import { useDocumentTitle } from './useDocumentTitle';

export function ItemsPage() {
  useDocumentTitle('Items');
  return (
    <div className="page">
      <ItemsPanel headingLevel={1} />
    </div>
  );
}
