import { ItemsPanel } from '../components/ItemsPanel';
import { StatusCard } from '../components/StatusCard';
import { useDocumentTitle } from './useDocumentTitle';

export function OverviewPage() {
  useDocumentTitle('Overview');
  return (
    <div className="page">
      <h1>Overview</h1>
      <StatusCard />
      <ItemsPanel headingLevel={2} />
    </div>
  );
}
